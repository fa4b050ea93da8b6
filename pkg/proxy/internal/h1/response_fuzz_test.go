package h1

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// waitLimit bounds every wait in these tests; reaching it is a failure (a
// deadlock), never a measurement.
const waitLimit = 10 * time.Second

// FuzzResponse feeds arbitrary upstream bytes to the HTTP/1.1 client's
// response reader and reads the body to its end. It must never panic or
// hang (the pipe is closed after the bytes, and every read has a
// deadline); a response it accepts must have had a complete head within the
// limit.
func FuzzResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n\r\nbody",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X\r\n\r\n2\r\nok\r\n0\r\nX: 1\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"HTTP/1.0 204 No Content\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 300) + "\r\n\r\n",
		"garbage",
	} {
		f.Add([]byte(s), false)
	}
	const limit = 256
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		req := fuzzRequest(t, head)
		near, far := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = far.Write(data)
			far.Close()
		}()
		defer func() { near.Close(); <-done }()

		tr := &Transport{timeout: waitLimit, maxHead: limit}
		c := newConn(near)
		res, err := tr.readResponse(req.Context(), c, req, nil, nil)
		if err != nil {
			return
		}
		defer res.Body.Close()
		end := strings.Index(string(data), "\n\r\n")
		if i := strings.Index(string(data), "\n\n"); i >= 0 && (end < 0 || i < end) {
			end = i
		}
		if end < 0 || end >= limit {
			t.Fatalf("accepted a response whose head is incomplete or over %d bytes: %q", limit, data)
		}
		// A malformed body is an error, never a panic or a hang.
		_ = near.SetReadDeadline(time.Now().Add(waitLimit))
		_, _ = io.Copy(io.Discard, res.Body)
	})
}

// fuzzRequest is the request a fuzzed response answers: a GET, or a HEAD.
func fuzzRequest(t *testing.T, head bool) *http.Request {
	method := http.MethodGet
	if head {
		method = http.MethodHead
	}
	req, err := http.NewRequest(method, "http://upstream.test/", nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
