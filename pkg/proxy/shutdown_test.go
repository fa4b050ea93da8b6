package proxy

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/net/websocket"
)

// served is a Handler behind a real NewServer, optionally over TLS with
// HTTP/2.
type served struct {
	h      *Handler
	srv    *http.Server
	url    string
	client *http.Client
	down   chan struct{} // closed once Shutdown closed the listener
}

func serve(t *testing.T, h *Handler, useTLS bool) *served {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &served{h: h, url: "http://" + ln.Addr().String(), client: &http.Client{}, down: make(chan struct{})}
	var tlsConfig *tls.Config
	if useTLS {
		// Borrow the test certificate (valid for 127.0.0.1) and a client
		// that trusts it and speaks HTTP/2.
		ts := httptest.NewUnstartedServer(nil)
		ts.EnableHTTP2 = true
		ts.StartTLS()
		tlsConfig, s.client = ts.TLS.Clone(), ts.Client()
		ts.Close()
		s.url = "https://" + ln.Addr().String()
	}
	s.srv = NewServer(ln.Addr().String(), h, tlsConfig, zerolog.Nop())
	s.srv.RegisterOnShutdown(func() { close(s.down) })
	served := make(chan error, 1)
	go func() {
		if useTLS {
			served <- s.srv.ServeTLS(ln, "", "")
		} else {
			served <- s.srv.Serve(ln)
		}
	}()
	t.Cleanup(func() {
		s.srv.Close()
		if err := <-served; err != http.ErrServerClosed {
			t.Errorf("serve: %v", err)
		}
	})
	return s
}

// shutdown runs Handler.Shutdown in the background.
func (s *served) shutdown(grace time.Duration) <-chan error {
	errc := make(chan error, 1)
	go func() { errc <- s.h.Shutdown(context.Background(), grace, s.srv) }()
	return errc
}

func TestShutdownDrainsInFlightRequest(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		_, _ = io.WriteString(w, "finished")
	})
	h := New(Config{})
	h.SetTable(table(testRoute("app.test", addrOf(t, up))))
	s := serve(t, h, false)

	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		res, err := s.client.Do(newRequest(t, "GET", s.url+"/", "app.test", nil))
		if err != nil {
			got <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		got <- result{string(b), err}
	}()
	<-arrived
	errc := s.shutdown(waitLimit)
	<-s.down
	if c, err := net.Dial("tcp4", s.srv.Addr); err == nil {
		c.Close()
		t.Fatal("a new connection was accepted during shutdown")
	}
	close(release)
	r := <-got
	if r.err != nil || r.body != "finished" {
		t.Fatalf("in-flight request: %q, %v; want it finished", r.body, r.err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// TestShutdownEndsStreamCleanly: an event stream that would never end is
// ended at the grace deadline, and the client sees a clean end of body.
func TestShutdownEndsStreamCleanly(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[useTLS]
		t.Run(name, func(t *testing.T) {
			up := backend(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = io.WriteString(w, "data: hello\n\n")
				w.(http.Flusher).Flush()
				<-r.Context().Done() // an endless stream
			})
			h := New(Config{})
			h.SetTable(table(testRoute("sse.test", addrOf(t, up))))
			s := serve(t, h, useTLS)

			res, err := s.client.Do(newRequest(t, "GET", s.url+"/", "sse.test", nil))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.Proto != name {
				t.Fatalf("client spoke %s, want %s", res.Proto, name)
			}
			first := make([]byte, len("data: hello\n\n"))
			if _, err := io.ReadFull(res.Body, first); err != nil {
				t.Fatalf("first event: %v", err)
			}

			errc := s.shutdown(50 * time.Millisecond)
			rest, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatalf("stream ended with %v after %q; want a clean end of body", err, rest)
			}
			if err := <-errc; err != nil {
				t.Fatalf("shutdown: %v", err)
			}
		})
	}
}

// TestShutdownEndsWebSocket: upgraded connections are not tracked by
// http.Server; Shutdown waits for them up to the grace, then closes them.
func TestShutdownEndsWebSocket(t *testing.T) {
	up := httptest.NewServer(websocket.Handler(func(ws *websocket.Conn) { _, _ = io.Copy(ws, ws) }))
	t.Cleanup(up.Close)
	h := New(Config{})
	h.SetTable(table(testRoute("ws.test", addrOf(t, up))))
	s := serve(t, h, false)

	conn, err := net.Dial("tcp4", s.srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := websocket.NewConfig("ws://ws.test/", "http://ws.test")
	ws, err := websocket.NewClient(cfg, conn)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer ws.Close()
	_ = ws.SetDeadline(time.Now().Add(waitLimit))
	if err := websocket.Message.Send(ws, "ping"); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := websocket.Message.Receive(ws, &got); err != nil || got != "ping" {
		t.Fatalf("echo before shutdown: %q %v", got, err)
	}

	errc := s.shutdown(50 * time.Millisecond)
	if err := <-errc; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := websocket.Message.Receive(ws, &got); err == nil {
		t.Fatalf("the connection is still open after shutdown (received %q)", got)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the connection is still open after shutdown (read timed out)")
	}
}
