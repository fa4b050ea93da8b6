package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The fail switch, for the tests of outlier ejection: a running backend is
// told to fail, and to recover, by a command run in its container (the
// image has no shell):
//
//	testbackend fail 500     every request (/healthz too) gets that status
//	testbackend fail refuse  the listener closes and open connections are
//	                         cut: new connections are refused
//	testbackend fail off     back to normal (the listener opens again on its port)
//
// The command asks the backend on its control listener,
// 127.0.0.1:$CONTROL_PORT (default 8079), which only the container reaches.

const defaultControlPort = "8079"

// failSwitch answers with status while it is set, and owns the listener
// so that it can refuse connections.
type failSwitch struct {
	status atomic.Int32 // 0: pass to next
	next   http.Handler
	ln     *switchListener
}

func (f *failSwitch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if code := f.status.Load(); code != 0 {
		w.WriteHeader(int(code))
		return
	}
	f.next.ServeHTTP(w, r)
}

// control serves GET /fail?mode=500|refuse|off.
func (f *failSwitch) control(w http.ResponseWriter, r *http.Request) {
	mode := r.URL.Query().Get("mode")
	var err error
	switch mode {
	case "off":
		f.status.Store(0)
		err = f.ln.open()
	case "refuse":
		f.ln.refuse()
	default:
		code, cerr := strconv.Atoi(mode)
		if cerr != nil || code < 100 || code > 599 {
			http.Error(w, "mode must be off, refuse or a status code", http.StatusBadRequest)
			return
		}
		f.status.Store(int32(code))
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	fmt.Fprintln(w, "fail:", mode)
}

// switchListener is a listener that can stop listening (connections to
// its port are refused) and listen again on the same address. Accept waits
// while it does not listen.
type switchListener struct {
	addr string

	mu     sync.Mutex
	ln     net.Listener  // nil while refusing
	wake   chan struct{} // closed when ln is set again, or on Close
	closed bool
	conns  map[net.Conn]struct{}
}

func listenSwitch(addr string) (*switchListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &switchListener{addr: ln.Addr().String(), ln: ln, wake: make(chan struct{}), conns: map[net.Conn]struct{}{}}, nil
}

func (s *switchListener) Accept() (net.Conn, error) {
	for {
		s.mu.Lock()
		ln, wake, closed := s.ln, s.wake, s.closed
		s.mu.Unlock()
		if closed {
			return nil, net.ErrClosed
		}
		if ln == nil {
			<-wake
			continue
		}
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			refused := s.ln != ln && !s.closed
			s.mu.Unlock()
			if refused {
				continue
			}
			return nil, err
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		return &trackedConn{Conn: c, s: s}, nil
	}
}

// refuse stops listening and cuts every open connection.
func (s *switchListener) refuse() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	for c := range s.conns {
		c.Close()
	}
}

// open listens again if refusing.
func (s *switchListener) open() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil || s.closed {
		return nil
	}
	var ln net.Listener
	var err error
	for range 50 { // the port may linger a moment after the close
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("listen again on %s: %w", s.addr, err)
	}
	s.ln = ln
	close(s.wake)
	s.wake = make(chan struct{})
	return nil
}

func (s *switchListener) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.wake)
	if s.ln != nil {
		return s.ln.Close()
	}
	return nil
}

func (s *switchListener) Addr() net.Addr {
	return tcpAddr(s.addr)
}

type tcpAddr string

func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }

type trackedConn struct {
	net.Conn
	s    *switchListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.conns, c.Conn)
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

// serveControl runs the control listener until it fails.
func serveControl(f *failSwitch, port string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /fail", f.control)
	srv := &http.Server{Addr: net.JoinHostPort("127.0.0.1", port), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}

// failCommand is `testbackend fail MODE`: it asks the running backend.
func failCommand(port, mode string, out io.Writer) error {
	c := &http.Client{Timeout: 10 * time.Second}
	res, err := c.Get("http://" + net.JoinHostPort("127.0.0.1", port) + "/fail?mode=" + mode)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return errors.New(string(body))
	}
	_, err = out.Write(body)
	return err
}
