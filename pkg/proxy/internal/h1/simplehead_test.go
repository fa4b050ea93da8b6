package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"reflect"
	"testing"
)

// FuzzSimpleResponse is differential: every response readSimpleResponse
// takes must come out of http.ReadResponse the same (status, protocol,
// header, length, Close, body bytes and body error, and the bytes left
// after the body); whatever it declines must be left unread.
func FuzzSimpleResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nconnection: keep-alive, Close\r\nx-a: 1\r\nX-A:  2 \r\n\r\nshort",
		"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n",
		"HTTP/1.1 200\r\nContent-Length: 10\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n folded\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\nX: y\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX: a\x7fb\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX: \xc3\xa9\t\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nBad Key: 1\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nPragma: no-cache\r\n\r\nok",
		"HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 999 Odd\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\nok\r\n0\r\n\r\n",
		"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		req := fuzzRequest(t, head)
		br := bufio.NewReaderSize(bytes.NewReader(data), BufferSize)
		got, ok, gerr := readSimpleResponse(br, req)
		if !ok {
			if rest, _ := io.ReadAll(br); !bytes.Equal(rest, data) {
				t.Fatalf("declined %q but consumed some of it", data)
			}
			return
		}
		wbr := bufio.NewReader(bytes.NewReader(data))
		want, werr := http.ReadResponse(wbr, req)
		if gerr != nil || werr != nil {
			if gerr == nil || werr == nil || !errors.Is(gerr, werr) {
				t.Fatalf("%q: error %v, http.ReadResponse %v", data, gerr, werr)
			}
			return
		}
		if got.Status != want.Status || got.StatusCode != want.StatusCode || got.Proto != want.Proto ||
			got.ProtoMajor != want.ProtoMajor || got.ProtoMinor != want.ProtoMinor ||
			got.ContentLength != want.ContentLength || got.Close != want.Close ||
			got.Request != want.Request || !reflect.DeepEqual(got.Header, want.Header) ||
			len(want.TransferEncoding) != 0 || want.Trailer != nil || want.Uncompressed {
			t.Fatalf("%q:\n got %+v\nwant %+v", data, got, want)
		}
		gb, gerr := io.ReadAll(got.Body)
		wb, werr := io.ReadAll(want.Body)
		if !bytes.Equal(gb, wb) || !errors.Is(gerr, werr) && (gerr == nil || werr == nil || gerr.Error() != werr.Error()) {
			t.Fatalf("%q: body %q %v, http.ReadResponse %q %v", data, gb, gerr, wb, werr)
		}
		grest, _ := io.ReadAll(br)
		wrest, _ := io.ReadAll(wbr)
		if werr == nil && !bytes.Equal(grest, wrest) {
			t.Fatalf("%q: left %q, http.ReadResponse left %q", data, grest, wrest)
		}
	})
}

// TestSimpleResponseTaken: the common head takes the fast path; the ones
// that change framing do not.
func TestSimpleResponseTaken(t *testing.T) {
	req, _ := http.NewRequest("GET", "http://upstream.test/", nil)
	for s, taken := range map[string]bool{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok": true,
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n":  false,
		"HTTP/1.1 200 OK\r\n\r\nok":                      false, // read to the end: ReadResponse
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n": false,
	} {
		res, ok, err := readSimpleResponse(bufio.NewReader(bytes.NewReader([]byte(s))), req)
		if ok != taken || err != nil {
			t.Errorf("%q: taken %v (%v), want %v", s, ok, err, taken)
		}
		if ok && (res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/plain" || res.ContentLength != 2) {
			t.Errorf("%q: %+v", s, res)
		}
	}
}
