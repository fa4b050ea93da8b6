package h1

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// streamFrameHead is the room left before the data in a copy buffer for the
// chunk-size line; two bytes after it take the chunk's CRLF.
const streamFrameHead = 8

// maxPipelined bounds what a client may send while its stream is open (the
// bytes are discarded: the connection closes when the stream ends).
const maxPipelined = 64 << 10

// Copy buffers of a stream: it starts with a small one, which it holds
// while it waits for the next event, and moves to the regular one when a
// read fills it (a bulk stream).
const (
	smallBufferSize = 1 << 10
	bufferSize      = 4 << 10
)

var (
	smallBuffers = sync.Pool{New: func() any { b := make([]byte, smallBufferSize); return &b }}
	buffers      = sync.Pool{New: func() any { b := make([]byte, bufferSize); return &b }}
)

// A Stream writes a response to an HTTP/1.1 client connection taken over
// from net/http (hijacked): the head and the chunked framing are written
// here, one small goroutine copies the body, another watches the client for
// a disconnect. The head says Connection: close; the connection is closed
// when the stream ends.
type Stream struct {
	Conn   net.Conn       // the client connection
	Res    *http.Response // status, content length, and the trailers once the body has ended
	Header http.Header    // the response headers to send; dropped once sent
	Body   io.Reader      // the body to copy
	// Cancel is closed when the client leaves while the body is copied; it
	// must make a blocked Read of Body return (e.g. the upstream Body that
	// Body reads from).
	Cancel io.Closer

	// WriteTimeout bounds each write to the client (0: no bound): a stream
	// has no idle timeout, but a client that stops reading does not hold it
	// forever.
	WriteTimeout time.Duration
	// WriteTimedOut, if set, is called when a write hit WriteTimeout.
	WriteTimedOut func()
	// ReadFailed, if set, is called when reading Body failed while the
	// client was still there.
	ReadFailed func(error)
	// Done is called once the stream has ended and Conn is closed, with
	// the number of body bytes written.
	Done func(written int64)

	chunked bool
	written int64
	done    atomic.Bool // the copy finished: the watcher must not cancel
	gone    atomic.Bool // the client went away
}

// Start starts the stream's goroutines and returns.
func (s *Stream) Start() {
	s.chunked = s.Res.ContentLength < 0
	go s.copy()
	go s.watch()
}

// watch reads the client connection until it fails (the client left, or
// copy closed it) and then cancels the upstream exchange.
func (s *Stream) watch() {
	var buf [64]byte
	for n := 0; n < maxPipelined; {
		m, err := s.Conn.Read(buf[:])
		if err != nil {
			break
		}
		n += m
	}
	if !s.done.Load() {
		s.gone.Store(true)
		_ = s.Cancel.Close() // unblocks copy's read; the caller's bookkeeping waits for Done
	}
}

// copy writes the head, then every upstream read as it arrives, then the
// end of the body. An upstream failure closes the connection without the
// last chunk, so the client sees a cut response.
func (s *Stream) copy() {
	if s.wrote(s.writeHead()) && s.copyBody() && s.chunked {
		s.wrote(s.writeEnd()) // a failure here is the client's: nothing left to do
	}
	s.done.Store(true)
	s.Conn.Close()
	s.Done(s.written)
}

// bound sets the deadline of the next write to the client.
func (s *Stream) bound() {
	if s.WriteTimeout > 0 {
		_ = s.Conn.SetWriteDeadline(time.Now().Add(s.WriteTimeout))
	}
}

// wrote notes a write's outcome and reports whether it succeeded.
func (s *Stream) wrote(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) && s.WriteTimedOut != nil {
		s.WriteTimedOut()
	}
	return err == nil
}

func (s *Stream) writeHead() error {
	s.bound()
	bw := bufWriters.Get().(*bufio.Writer)
	bw.Reset(s.Conn)
	code := s.Res.StatusCode
	bw.WriteString("HTTP/1.1 ")
	if text := http.StatusText(code); text != "" {
		bw.WriteString(strconv.Itoa(code))
		bw.WriteByte(' ')
		bw.WriteString(text)
	} else {
		bw.WriteString(strconv.Itoa(code))
		bw.WriteString(" status code ")
		bw.WriteString(strconv.Itoa(code))
	}
	bw.WriteString("\r\n")
	h := s.Header
	h.Del("Content-Length")
	if !s.chunked {
		h["Content-Length"] = []string{strconv.FormatInt(s.Res.ContentLength, 10)}
	}
	if _, ok := h["Date"]; !ok {
		h["Date"] = []string{time.Now().UTC().Format(http.TimeFormat)}
	}
	err := h.Write(bw)
	if err == nil {
		if s.chunked {
			bw.WriteString("Transfer-Encoding: chunked\r\n")
		}
		bw.WriteString("Connection: close\r\n\r\n")
		err = bw.Flush()
	}
	bw.Reset(nil)
	bufWriters.Put(bw)
	s.Header = nil // an open stream need not keep them
	return err
}

// copyBody copies the upstream body, one write per read, and reports
// whether it reached the end of the body. A stream starts with a small
// buffer and moves to the regular one when a read fills it.
func (s *Stream) copyBody() bool {
	pool := &smallBuffers
	bp := pool.Get().(*[]byte)
	defer func() { pool.Put(bp) }()
	for {
		buf := *bp
		data := buf[streamFrameHead : len(buf)-2]
		n, rerr := s.Body.Read(data)
		if n > 0 {
			frame := data[:n]
			if s.chunked {
				frame = chunkFrame(buf, n)
			}
			s.bound()
			if _, err := s.Conn.Write(frame); !s.wrote(err) {
				s.gone.Store(true)
				return false
			}
			s.written += int64(n)
			if n == len(data) && pool == &smallBuffers {
				pool.Put(bp)
				pool = &buffers
				bp = pool.Get().(*[]byte)
			}
		}
		if rerr == io.EOF {
			return true
		}
		if rerr != nil {
			if !s.gone.Load() && !errors.Is(rerr, net.ErrClosed) && s.ReadFailed != nil {
				s.ReadFailed(rerr)
			}
			return false
		}
	}
}

// chunkFrame frames the n bytes at buf[streamFrameHead:] as one chunk, in
// place, and returns the frame.
func chunkFrame(buf []byte, n int) []byte {
	var size [16]byte
	hex := strconv.AppendInt(size[:0], int64(n), 16)
	start := streamFrameHead - 2 - len(hex)
	copy(buf[start:], hex)
	buf[streamFrameHead-2], buf[streamFrameHead-1] = '\r', '\n'
	end := streamFrameHead + n
	buf[end], buf[end+1] = '\r', '\n'
	return buf[start : end+2]
}

// writeEnd writes the last chunk with the upstream's trailers, if any.
func (s *Stream) writeEnd() error {
	s.bound()
	if len(s.Res.Trailer) == 0 {
		_, err := io.WriteString(s.Conn, "0\r\n\r\n")
		return err
	}
	bw := bufWriters.Get().(*bufio.Writer)
	bw.Reset(s.Conn)
	bw.WriteString("0\r\n")
	err := s.Res.Trailer.Write(bw)
	if err == nil {
		bw.WriteString("\r\n")
		err = bw.Flush()
	}
	bw.Reset(nil)
	bufWriters.Put(bw)
	return err
}
