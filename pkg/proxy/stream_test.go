package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// lockstep is an upstream that writes one chunk, flushes, and writes the
// next only when the test says so. A proxy that buffers never delivers the
// first chunk, and the test fails at waitLimit instead of deadlocking.
type lockstep struct {
	contentType string
	length      bool // send a Content-Length (then only flushing on every write delivers early)
	chunks      []string
	next        chan struct{}
}

func (l *lockstep) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", l.contentType)
	if l.length {
		w.Header().Set("Content-Length", strconv.Itoa(len(strings.Join(l.chunks, ""))))
	}
	w.WriteHeader(http.StatusOK)
	for i, c := range l.chunks {
		if i > 0 {
			select {
			case <-l.next:
			case <-r.Context().Done():
				return
			}
		}
		_, _ = io.WriteString(w, c)
		w.(http.Flusher).Flush()
	}
}

// readLockstep reads the chunks one by one (each ends with sep), releasing
// the upstream's next chunk only after the previous one arrived.
func readLockstep(t *testing.T, body io.Reader, l *lockstep, sep string) {
	t.Helper()
	got := make(chan string)
	errc := make(chan error, 1)
	go func() {
		br := bufio.NewReader(body)
		for {
			var sb strings.Builder
			for !strings.HasSuffix(sb.String(), sep) {
				line, err := br.ReadString('\n')
				sb.WriteString(line)
				if err != nil {
					errc <- err
					return
				}
			}
			got <- sb.String()
		}
	}()
	for i, want := range l.chunks {
		select {
		case c := <-got:
			if c != want {
				t.Fatalf("chunk %d = %q, want %q", i, c, want)
			}
		case err := <-errc:
			t.Fatalf("chunk %d: %v", i, err)
		case <-time.After(waitLimit):
			t.Fatalf("chunk %d not delivered while the upstream waits: the proxy buffers", i)
		}
		if i < len(l.chunks)-1 {
			select {
			case l.next <- struct{}{}:
			case <-time.After(waitLimit):
				t.Fatalf("the upstream stopped waiting for chunk %d: the stream was cut", i+1)
			}
		}
	}
}

func TestEventStreamFlushesEachEvent(t *testing.T) {
	for _, proto := range []string{"HTTP/1.1", "HTTP/2.0"} {
		t.Run(proto, func(t *testing.T) {
			l := &lockstep{contentType: "text/event-stream", next: make(chan struct{}),
				chunks: []string{"event: a\ndata: 1\n\n", "data: 2\n\n", "id: 3\ndata: 3\n\n"}}
			up := httptest.NewServer(l)
			t.Cleanup(up.Close)
			h := New(Config{})
			h.SetTable(table(testRoute("sse.test", addrOf(t, up))))
			front := httptest.NewUnstartedServer(h)
			if proto == "HTTP/2.0" {
				front.EnableHTTP2 = true
				front.StartTLS()
			} else {
				front.Start()
			}
			t.Cleanup(front.Close)

			req := newRequest(t, "GET", front.URL+"/events", "sse.test", nil)
			res, err := front.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.Proto != proto {
				t.Fatalf("client spoke %s, want %s", res.Proto, proto)
			}
			if g := metricValue(t, h.metrics.streams.WithLabelValues("svc/default")); g != 1 {
				t.Errorf("active streams %v, want 1", g)
			}
			readLockstep(t, res.Body, l, "\n\n")
		})
	}
}

// TestStreamRouteFlushesAnyType uses a response with a Content-Length, which
// ReverseProxy would otherwise buffer: only stream=true flushes it per write.
func TestStreamRouteFlushesAnyType(t *testing.T) {
	l := &lockstep{contentType: "application/x-ndjson", length: true, next: make(chan struct{}),
		chunks: []string{`{"n":1}` + "\n", `{"n":2}` + "\n", `{"n":3}` + "\n"}}
	up := httptest.NewServer(l)
	t.Cleanup(up.Close)
	rt := testRoute("ndjson.test", addrOf(t, up))
	rt.Stream = true
	f := newFixture(t, Config{}, table(rt))
	res := f.do(t, f.newRequest(t, "GET", "ndjson.test", "/", nil))
	readLockstep(t, res.Body, l, "\n")
}

func TestWebSocketEcho(t *testing.T) {
	up := httptest.NewServer(websocket.Handler(func(ws *websocket.Conn) { _, _ = io.Copy(ws, ws) }))
	t.Cleanup(up.Close)
	f := newFixture(t, Config{}, table(testRoute("ws.test", addrOf(t, up))))

	conn, err := net.Dial("tcp4", f.front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := websocket.NewConfig("ws://ws.test/echo", "http://ws.test")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := websocket.NewClient(cfg, conn)
	if err != nil {
		t.Fatalf("websocket handshake through the proxy: %v", err)
	}
	defer ws.Close()
	_ = ws.SetDeadline(time.Now().Add(waitLimit))
	for _, msg := range []string{"hello", "second message"} {
		if err := websocket.Message.Send(ws, msg); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := websocket.Message.Receive(ws, &got); err != nil {
			t.Fatal(err)
		}
		if got != msg {
			t.Errorf("echo %q, want %q", got, msg)
		}
	}
	if g := metricValue(t, f.h.metrics.streams.WithLabelValues("svc/default")); g != 1 {
		t.Errorf("active streams %v, want 1", g)
	}
}

func TestUpstreamSchemes(t *testing.T) {
	report := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s tls=%v", r.Proto, r.TLS != nil)
	})
	h2c := httptest.NewUnstartedServer(report)
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	h2c.Config.Protocols = &p
	h2c.Start()
	t.Cleanup(h2c.Close)
	tlsUp := httptest.NewTLSServer(report) // self-signed, on an IP
	t.Cleanup(tlsUp.Close)
	plain := httptest.NewServer(report)
	t.Cleanup(plain.Close)

	tests := []struct {
		scheme string
		up     *httptest.Server
		want   string
	}{
		{route.SchemeHTTP, plain, "HTTP/1.1 tls=false"},
		{route.SchemeH2C, h2c, "HTTP/2.0 tls=false"},
		{route.SchemeHTTPS, tlsUp, "HTTP/1.1 tls=true"},
	}
	for _, tt := range tests {
		t.Run(tt.scheme, func(t *testing.T) {
			rt := testRoute("app.test", addrOf(t, tt.up))
			rt.Scheme = tt.scheme
			f := newFixture(t, Config{}, table(rt))
			res := f.do(t, f.newRequest(t, "GET", "app.test", "/", nil))
			if body := readAll(t, res.Body); res.StatusCode != 200 || body != tt.want {
				t.Fatalf("got %d %q, want 200 %q", res.StatusCode, body, tt.want)
			}
		})
	}
}

// TestH2CHeaderTimeout: the route timeout applies to h2c upstreams too.
func TestH2CHeaderTimeout(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	up.Config.Protocols = &p
	up.Start()
	t.Cleanup(up.Close)
	rt := testRoute("app.test", addrOf(t, up))
	rt.Scheme, rt.Timeout = route.SchemeH2C, 50*time.Millisecond
	f := newFixture(t, Config{}, table(rt))
	res := f.do(t, f.newRequest(t, "GET", "app.test", "/", nil))
	if res.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504", res.StatusCode)
	}
}

// TestStreamRouteFullDuplex: on a stream=true route an HTTP/1.1 client and
// the upstream can talk in both directions at once, line by line.
func TestStreamRouteFullDuplex(t *testing.T) {
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).EnableFullDuplex()
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		sc := bufio.NewScanner(r.Body)
		for sc.Scan() {
			_, _ = io.WriteString(w, "echo "+sc.Text()+"\n")
			w.(http.Flusher).Flush()
		}
	})
	rt := testRoute("duplex.test", addrOf(t, up))
	rt.Stream = true
	f := newFixture(t, Config{}, table(rt))

	pr, pw := io.Pipe()
	defer pw.Close()
	req := f.newRequest(t, "POST", "duplex.test", "/", pr)
	context.AfterFunc(req.Context(), func() { pw.CloseWithError(req.Context().Err()) }) // unblock the client at waitLimit
	res := f.do(t, req)
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	for _, msg := range []string{"one", "two", "three"} {
		if _, err := io.WriteString(pw, msg+"\n"); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-lines:
			if got != "echo "+msg {
				t.Fatalf("got %q, want %q", got, "echo "+msg)
			}
		case <-time.After(waitLimit):
			t.Fatalf("no echo of %q while the request body is still open: not full duplex", msg)
		}
	}
}
