package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// errKind classifies why a stream failed.
type errKind int

const (
	errNone   errKind = iota
	errDial           // could not connect or send the request
	errStatus         // no 200 text/event-stream response
	errRead           // the stream broke before the end of the window
	errStall          // the stream went silent for longer than -stall in the window
	numErrKinds
)

var errKindNames = [numErrKinds]string{"", "dial", "status", "read", "stall"}

// window is the measurement interval, published once all streams are open.
type window struct {
	start, end time.Time
}

// stream is one SSE connection and what it saw.
type stream struct {
	conn    net.Conn
	delays  []time.Duration // per event received inside the window
	maxGap  time.Duration   // longest silence inside the window
	lastRx  time.Time
	err     errKind
	errText string
}

// open dials, sends the request and reads the response headers.
func (s *stream) open(cfg config) bool {
	conn, err := dial(cfg)
	if err != nil {
		s.fail(errDial, err)
		return false
	}
	s.conn = conn
	req := "GET " + cfg.path + " HTTP/1.1\r\nHost: " + cfg.host + "\r\nAccept: text/event-stream\r\nUser-Agent: ssebench\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		s.fail(errDial, err)
		return false
	}
	return true
}

// dial connects to cfg.addr, over TLS 1.3 with -tls.
func dial(cfg config) (net.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if !cfg.tls {
		return d.Dial("tcp4", cfg.addr)
	}
	// The handshake as well: many at once on a loaded machine take a while.
	d.Timeout = 15 * time.Second
	conn, err := tls.DialWithDialer(d, "tcp4", cfg.addr, &tls.Config{
		ServerName:         strings.Split(cfg.host, ":")[0],
		InsecureSkipVerify: true, // the bench's own self-signed certificate
		MinVersion:         tls.VersionTLS13,
		// X25519 alone: what wrk and h2load (OpenSSL 3.0) offer, so that no
		// peer pays for a post-quantum key share the others do not.
		CurvePreferences: []tls.CurveID{tls.X25519},
		NextProtos:       []string{"http/1.1"},
	})
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// readResponse reads the response head and returns a reader of the body.
func (s *stream) readResponse(cfg config) (*bufio.Reader, bool) {
	_ = s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReaderSize(s.conn, 4096), nil)
	if err != nil {
		s.fail(errStatus, err)
		return nil, false
	}
	_ = s.conn.SetReadDeadline(time.Time{})
	ct := resp.Header.Get("Content-Type")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/event-stream") {
		s.fail(errStatus, fmt.Errorf("status %d, content-type %q", resp.StatusCode, ct))
		return nil, false
	}
	return bufio.NewReaderSize(resp.Body, 1024), true
}

// read consumes events until the connection is closed by the caller after
// the window. win is nil until the window is known.
func (s *stream) read(body *bufio.Reader, win *atomic.Pointer[window], closing *atomic.Bool) {
	for {
		line, err := body.ReadSlice('\n')
		now := time.Now()
		if err != nil {
			if !closing.Load() {
				s.fail(errRead, err)
			}
			return
		}
		ts, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok {
			continue
		}
		sent, perr := strconv.ParseInt(string(bytes.TrimSpace(ts)), 10, 64)
		if perr != nil {
			continue
		}
		s.observe(now, time.Unix(0, sent), win.Load())
	}
}

func (s *stream) observe(now, sent time.Time, w *window) {
	if w == nil || now.Before(w.start) || !now.Before(w.end) {
		s.lastRx = now
		return
	}
	prev := s.lastRx
	if prev.Before(w.start) {
		prev = w.start
	}
	s.maxGap = max(s.maxGap, now.Sub(prev))
	s.lastRx = now
	s.delays = append(s.delays, now.Sub(sent))
}

// finish records a stall if the stream was silent too long in the window.
func (s *stream) finish(w window, stallAfter time.Duration) {
	if s.err != errNone {
		return
	}
	last := s.lastRx
	if last.Before(w.start) {
		last = w.start
	}
	s.maxGap = max(s.maxGap, w.end.Sub(last))
	if s.maxGap > stallAfter {
		s.fail(errStall, fmt.Errorf("silent for %v", s.maxGap.Round(time.Millisecond)))
	}
}

func (s *stream) fail(kind errKind, err error) {
	if s.err != errNone {
		return
	}
	s.err = kind
	s.errText = err.Error()
	if errors.Is(err, io.EOF) {
		s.errText = "connection closed (EOF)"
	}
}
