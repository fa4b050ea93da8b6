package proxy

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// hijackFront serves h on a test server that counts the connections
// handed over by Hijack; with h2 it speaks HTTP/2 over TLS.
type hijackFront struct {
	*httptest.Server
	hijacked atomic.Int32
}

func newHijackFront(t *testing.T, h http.Handler, h2 bool) *hijackFront {
	t.Helper()
	f := &hijackFront{}
	f.Server = httptest.NewUnstartedServer(h)
	f.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateHijacked {
			f.hijacked.Add(1)
		}
	}
	if h2 {
		f.EnableHTTP2 = true
		f.StartTLS()
	} else {
		f.Start()
	}
	t.Cleanup(f.Close)
	return f
}

// logLines passes each access log line to a channel, so that a test can
// wait for a stream's end to be recorded.
type logLines chan string

func (l logLines) Write(p []byte) (int, error) {
	l <- string(p)
	return len(p), nil
}

// awaitLog returns the next access log line, failing at waitLimit.
func awaitLog(t *testing.T, l logLines) map[string]any {
	t.Helper()
	select {
	case line := <-l:
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		return m
	case <-time.After(waitLimit):
		t.Fatal("no access log line: the stream's end was not recorded")
		return nil
	}
}

func TestHijackedStreamFlushesEachEvent(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		length      bool
		stream      bool
		sep         string
	}{
		{name: "event stream, chunked", contentType: "text/event-stream", sep: "\n\n"},
		{name: "stream route, content length", contentType: "application/x-ndjson", length: true, stream: true, sep: "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &lockstep{contentType: tt.contentType, length: tt.length, next: make(chan struct{}),
				chunks: []string{"data: 1" + tt.sep, "data: 2" + tt.sep, strings.Repeat("x", 3000) + tt.sep}}
			up := httptest.NewServer(l)
			t.Cleanup(up.Close)
			rt := testRoute("sse.test", addrOf(t, up))
			rt.Stream = tt.stream
			rt.Headers = []route.Header{{Name: "X-Route", Value: "on"}}
			logs := make(logLines, 4)
			h := New(Config{Logger: newLogger(logs)})
			h.SetTable(table(rt))
			front := newHijackFront(t, h, false)

			res, err := front.Client().Do(newRequest(t, "GET", front.URL+"/events", "sse.test", nil))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if n := front.hijacked.Load(); n != 1 {
				t.Fatalf("%d connections hijacked, want 1", n)
			}
			if got := res.Header.Get("X-Route"); got != "on" || res.Header.Get("Content-Type") != tt.contentType || !res.Close {
				t.Errorf("head: X-Route %q, Content-Type %q, close %v; want on, %s, true",
					got, res.Header.Get("Content-Type"), res.Close, tt.contentType)
			}
			size := int64(len(strings.Join(l.chunks, "")))
			chunked := len(res.TransferEncoding) == 1 && res.TransferEncoding[0] == "chunked"
			if tt.length && (res.ContentLength != size || chunked) || !tt.length && !chunked {
				t.Errorf("framing: content length %d, transfer encoding %v", res.ContentLength, res.TransferEncoding)
			}
			if g := metricValue(t, h.metrics.streams.WithLabelValues("svc/default")); g != 1 {
				t.Errorf("active streams %v, want 1", g)
			}
			readLockstep(t, res.Body, l, tt.sep)
			if rest, err := io.ReadAll(res.Body); err != nil || len(rest) > 0 {
				t.Fatalf("after the last event: %q, %v; want a clean end", rest, err)
			}

			line := awaitLog(t, logs)
			if line["status"] != 200.0 || line["bytes"] != float64(size) || line["route"] != "svc/default" {
				t.Errorf("access log %v: want status 200, %d bytes, route svc/default", line, size)
			}
			if g := metricValue(t, h.metrics.streams.WithLabelValues("svc/default")); g != 0 {
				t.Errorf("active streams %v after the end, want 0", g)
			}
			if c := metricValue(t, h.metrics.requests.WithLabelValues("svc/default", "200")); c != 1 {
				t.Errorf("requests counted %v, want 1", c)
			}
		})
	}
}

// openRawStream sends a GET over a plain connection and reads the head and
// the first event.
func openRawStream(t *testing.T, addr, host, event string) (net.Conn, *http.Response) {
	t.Helper()
	conn, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(waitLimit))
	if _, err := io.WriteString(conn, "GET /events HTTP/1.1\r\nHost: "+host+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("response head: %v", err)
	}
	first := make([]byte, len(event))
	if _, err := io.ReadFull(res.Body, first); err != nil || string(first) != event {
		t.Fatalf("first event %q, %v; want %q", first, err, event)
	}
	return conn, res
}

// endlessStream is an upstream that sends one event and waits for its
// request to end, which it reports on canceled.
func endlessStream(t *testing.T, event string) (*httptest.Server, chan struct{}) {
	canceled := make(chan struct{}, 1)
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, event)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		canceled <- struct{}{}
	})
	return up, canceled
}

func TestHijackedStreamClientLeaves(t *testing.T) {
	const event = "data: hello\n\n"
	up, canceled := endlessStream(t, event)
	logs := make(logLines, 4)
	h := New(Config{Logger: newLogger(logs)})
	h.SetTable(table(testRoute("sse.test", addrOf(t, up))))
	front := newHijackFront(t, h, false)

	conn, _ := openRawStream(t, front.Listener.Addr().String(), "sse.test", event)
	if n := front.hijacked.Load(); n != 1 {
		t.Fatalf("%d connections hijacked, want 1", n)
	}
	conn.Close()
	select {
	case <-canceled:
	case <-time.After(waitLimit):
		t.Fatal("the client left but the upstream request was not canceled")
	}
	if line := awaitLog(t, logs); line["status"] != 200.0 || line["bytes"] != float64(len(event)) {
		t.Errorf("access log %v: want status 200, %d bytes", line, len(event))
	}
	if g := metricValue(t, h.metrics.streams.WithLabelValues("svc/default")); g != 0 {
		t.Errorf("active streams %v after the client left, want 0", g)
	}
}

func TestEndStreamsEndsHijackedStream(t *testing.T) {
	const event = "data: hello\n\n"
	up, canceled := endlessStream(t, event)
	h := New(Config{})
	h.SetTable(table(testRoute("sse.test", addrOf(t, up))))
	front := newHijackFront(t, h, false)

	_, res := openRawStream(t, front.Listener.Addr().String(), "sse.test", event)
	if n := front.hijacked.Load(); n != 1 {
		t.Fatalf("%d connections hijacked, want 1", n)
	}
	drained := h.streams.drained()
	h.EndStreams()
	if rest, err := io.ReadAll(res.Body); err != nil || len(rest) > 0 {
		t.Fatalf("ended stream: %q, %v; want a clean end of body (the last chunk)", rest, err)
	}
	for name, c := range map[string]<-chan struct{}{"registry drained": drained, "upstream canceled": canceled} {
		select {
		case <-c:
		case <-time.After(waitLimit):
			t.Fatalf("after EndStreams: %s did not happen", name)
		}
	}
}

func TestHijackedStreamUpstreamFails(t *testing.T) {
	const event = "data: hello\n\n"
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, event)
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // cut: no last chunk
	})
	h := New(Config{})
	h.SetTable(table(testRoute("sse.test", addrOf(t, up))))
	front := newHijackFront(t, h, false)

	_, res := openRawStream(t, front.Listener.Addr().String(), "sse.test", event)
	if n := front.hijacked.Load(); n != 1 {
		t.Fatalf("%d connections hijacked, want 1", n)
	}
	if rest, err := io.ReadAll(res.Body); err == nil {
		t.Fatalf("cut upstream stream ended cleanly after %q; want an error", rest)
	}
}

// TestStreamNotHijacked: only HTTP/1.1 streams leave net/http.
func TestStreamNotHijacked(t *testing.T) {
	tests := []struct {
		name  string
		h2    bool
		proto string
	}{
		{name: "HTTP/2", h2: true, proto: "HTTP/2.0"},
		{name: "HTTP/1.0", proto: "HTTP/1.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &lockstep{contentType: "text/event-stream", next: make(chan struct{}),
				chunks: []string{"data: 1\n\n", "data: 2\n\n"}}
			up := httptest.NewServer(l)
			t.Cleanup(up.Close)
			h := New(Config{})
			h.SetTable(table(testRoute("sse.test", addrOf(t, up))))
			front := newHijackFront(t, h, tt.h2)

			req := newRequest(t, "GET", front.URL+"/events", "sse.test", nil)
			var res *http.Response
			var err error
			if tt.h2 {
				res, err = front.Client().Do(req)
			} else {
				res, err = rawHTTP10(front.Listener.Addr().String(), req)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.Proto != tt.proto {
				t.Fatalf("response in %s, want %s", res.Proto, tt.proto)
			}
			readLockstep(t, res.Body, l, "\n\n")
			if n := front.hijacked.Load(); n != 0 {
				t.Fatalf("%d connections hijacked, want 0", n)
			}
		})
	}
}

// rawHTTP10 sends req as HTTP/1.0 over a new connection.
func rawHTTP10(addr string, req *http.Request) (*http.Response, error) {
	conn, err := net.Dial("tcp4", addr)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(waitLimit))
	if _, err := io.WriteString(conn, "GET "+req.URL.RequestURI()+" HTTP/1.0\r\nHost: "+req.Host+"\r\n\r\n"); err != nil {
		conn.Close()
		return nil, err
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		conn.Close()
		return nil, err
	}
	res.Body = struct {
		io.Reader
		io.Closer
	}{res.Body, conn}
	return res, nil
}

// TestShutdownWaitsForHijackedStream: http.Server does not track a hijacked
// stream, so Shutdown itself waits until the stream has ended.
func TestShutdownWaitsForHijackedStream(t *testing.T) {
	const event = "data: hello\n\n"
	up, _ := endlessStream(t, event)
	h := New(Config{})
	h.SetTable(table(testRoute("sse.test", addrOf(t, up))))
	s := serve(t, h, false)

	_, res := openRawStream(t, s.srv.Addr, "sse.test", event)
	if g := metricValue(t, h.metrics.streams.WithLabelValues("svc/default")); g != 1 {
		t.Fatalf("active streams %v, want 1", g)
	}
	if err := <-s.shutdown(50 * time.Millisecond); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if g := metricValue(t, h.metrics.streams.WithLabelValues("svc/default")); g != 0 {
		t.Errorf("Shutdown returned with %v streams still open", g)
	}
	if rest, err := io.ReadAll(res.Body); err != nil || len(rest) > 0 {
		t.Fatalf("after shutdown: %q, %v; want a clean end of body", rest, err)
	}
}
