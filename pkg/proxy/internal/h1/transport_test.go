package h1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

func newTestTransport() *Transport {
	var d net.Dialer
	return New(Config{
		Dial:            func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) },
		HeaderTimeout:   waitLimit,
		ConnectTimeout:  waitLimit,
		MaxResponseHead: 1 << 20,
		MaxIdlePerHost:  4,
		IdleTimeout:     time.Minute,
	})
}

// oneShotUpstream answers the first request on each connection (keep-alive)
// and closes the connection, without a response, when the second arrives:
// an upstream whose keep-alive ended while the connection sat in the pool,
// found out only once a request was written to it.
func oneShotUpstream(t *testing.T) (string, chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan struct{}, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				_, _ = http.ReadRequest(br) // the second request: closed unanswered
			}()
		}
	}()
	return ln.Addr().String(), accepted
}

func get(t *testing.T, tr *Transport, addr string) (*http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	return tr.RoundTrip(req)
}

// TestStaleConnNotRetried: a request that fails on a pooled connection
// before any response byte is reported as ErrStaleConn and not sent again
// (retrying is the caller's decision); the next request gets a new
// connection.
func TestStaleConnNotRetried(t *testing.T) {
	tr := newTestTransport()
	defer tr.Close()
	addr, accepted := oneShotUpstream(t)

	res, err := get(t, tr, addr)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(res.Body); err != nil || string(b) != "ok" {
		t.Fatalf("first response: %q, %v", b, err)
	}
	res.Body.Close()
	if n := tr.Idle(addr); n != 1 {
		t.Fatalf("%d idle connections after a complete response, want 1", n)
	}

	_, err = get(t, tr, addr)
	if !errors.Is(err, ErrStaleConn) {
		t.Fatalf("request on the closed pooled connection: %v, want ErrStaleConn", err)
	}
	if len(accepted) != 1 {
		t.Fatalf("the transport dialled again (%d connections): it must not retry", len(accepted))
	}

	res, err = get(t, tr, addr)
	if err != nil {
		t.Fatalf("request after the stale connection: %v", err)
	}
	res.Body.Close()
	if len(accepted) != 2 {
		t.Fatalf("%d connections, want 2", len(accepted))
	}
}

// TestCloseStopsSweeper: Close returns once the pool's sweeper goroutine has
// returned, and closes the idle connections.
func TestCloseStopsSweeper(t *testing.T) {
	tr := newTestTransport()
	addr, _ := oneShotUpstream(t)
	res, err := get(t, tr, addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if !sweeping() {
		t.Fatal("no sweeper goroutine before Close")
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if sweeping() {
		t.Fatal("a sweeper goroutine is still running after Close")
	}
	if n := tr.Idle(addr); n != 0 {
		t.Fatalf("%d idle connections after Close", n)
	}
}

// sweeping reports whether a Transport's sweeper is running.
func sweeping() bool {
	buf := make([]byte, 1<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), "h1.(*Transport).sweep(")
}

// deadPeer is a connection whose reads fail as the kernel fails them once
// data sent to a vanished peer stayed unacknowledged past TCP_USER_TIMEOUT.
type deadPeer struct{ net.Conn }

func (deadPeer) Read([]byte) (int, error) {
	return 0, &net.OpError{Op: "read", Net: "tcp4", Err: os.NewSyscallError("read", syscall.ETIMEDOUT)}
}

// TestDeadPeerIsNotHeaderTimeout: ETIMEDOUT while awaiting the response is
// returned as it is (the caller sees a broken connection it may retry
// elsewhere), not as ErrHeaderTimeout, although its Timeout() is true.
func TestDeadPeerIsNotHeaderTimeout(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	var d net.Dialer
	tr := New(Config{
		Dial: func(ctx context.Context, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, "tcp4", addr)
			if err != nil {
				return nil, err
			}
			return deadPeer{c}, nil
		},
		HeaderTimeout: waitLimit, ConnectTimeout: waitLimit, MaxResponseHead: 1 << 20,
		MaxIdlePerHost: 4, IdleTimeout: time.Minute,
	})
	defer tr.Close()
	_, err = get(t, tr, ln.Addr().String())
	if err == nil || errors.Is(err, ErrHeaderTimeout) || !errors.Is(err, syscall.ETIMEDOUT) {
		t.Fatalf("RoundTrip on a dead peer: %v; want the ETIMEDOUT error, not ErrHeaderTimeout", err)
	}
}

// TestBodyBuffered: a body that arrived with its head is Buffered (pkg/proxy
// then bounds none of its reads); one the upstream still owes is not.
func TestBodyBuffered(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	release := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
		<-release // the body only once the client has the head
		_, _ = io.WriteString(c, "later")
	}()
	tr := newTestTransport()
	defer tr.Close()
	addr := ln.Addr().String()

	res, err := get(t, tr, addr)
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := res.Body.(*Body); !ok || !b.Buffered() {
		t.Fatalf("body with the head: Buffered false (%T)", res.Body)
	}
	if got, err := io.ReadAll(res.Body); err != nil || string(got) != "ok" {
		t.Fatalf("body %q, %v", got, err)
	}
	res.Body.Close()

	res, err = get(t, tr, addr) // the same connection, from the pool
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := res.Body.(*Body); !ok || b.Buffered() {
		t.Fatalf("body still owed: Buffered true (%T)", res.Body)
	}
	close(release)
	if got, err := io.ReadAll(res.Body); err != nil || string(got) != "later" {
		t.Fatalf("body %q, %v", got, err)
	}
	res.Body.Close()
}
