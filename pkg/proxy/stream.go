package proxy

import (
	"io"
	"sync"
	"sync/atomic"
)

// streams is the registry of open streams, so that shutdown can end them.
type streams struct {
	mu     sync.Mutex
	open   map[*streamBody]struct{}
	ending bool          // set at the shutdown deadline: new streams end at once
	idle   chan struct{} // closed when the last open stream closes
	h1     int           // open hijacked HTTP/1.1 streams (hijack.go)
	h1Idle chan struct{} // closed when the last of those closes
}

// hijacked marks b as a hijacked HTTP/1.1 stream, which Shutdown waits for.
func (s *streams) hijacked(b *streamBody) {
	s.mu.Lock()
	b.h1 = true
	s.h1++
	s.mu.Unlock()
}

// h1Drained returns a channel closed once no hijacked stream is open.
func (s *streams) h1Drained() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h1 == 0 {
		c := make(chan struct{})
		close(c)
		return c
	}
	if s.h1Idle == nil {
		s.h1Idle = make(chan struct{})
	}
	return s.h1Idle
}

// drained returns a channel closed once no stream is open.
func (s *streams) drained() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.open) == 0 {
		c := make(chan struct{})
		close(c)
		return c
	}
	if s.idle == nil {
		s.idle = make(chan struct{})
	}
	return s.idle
}

// streamBody wraps a streamed upstream body. Ending it closes the upstream
// body, which unblocks the proxy's pending read; that read then reports a
// clean io.EOF, so ReverseProxy finishes the response normally and the client
// sees the end of the body (the last chunk, or END_STREAM on HTTP/2) rather
// than a reset connection.
type streamBody struct {
	io.ReadCloser
	reg    *streams
	stats  *routeMetrics
	ending atomic.Bool
	closed sync.Once
	h1     bool // hijacked (under reg.mu)
}

func (s *streams) track(body io.ReadCloser, stats *routeMetrics, upgraded bool) io.ReadCloser {
	b := &streamBody{ReadCloser: body, reg: s, stats: stats}
	stats.streams.Inc()
	s.mu.Lock()
	ending := s.ending
	s.open[b] = struct{}{}
	s.mu.Unlock()
	if ending {
		b.end()
	}
	if rw, ok := body.(io.ReadWriteCloser); ok && upgraded {
		return &upgradedBody{streamBody: b, w: rw}
	}
	return b
}

func (b *streamBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && b.ending.Load() {
		err = io.EOF
	}
	return n, err
}

func (b *streamBody) Close() error {
	b.closed.Do(func() {
		// The gauge first: whoever waits on idle or h1Idle (Shutdown) must
		// find it already down.
		b.stats.streams.Dec()
		b.reg.mu.Lock()
		delete(b.reg.open, b)
		if len(b.reg.open) == 0 && b.reg.idle != nil {
			close(b.reg.idle)
			b.reg.idle = nil
		}
		if b.h1 {
			b.reg.h1--
			if b.reg.h1 == 0 && b.reg.h1Idle != nil {
				close(b.reg.h1Idle)
				b.reg.h1Idle = nil
			}
		}
		b.reg.mu.Unlock()
	})
	return b.ReadCloser.Close()
}

func (b *streamBody) end() {
	b.ending.Store(true)
	_ = b.ReadCloser.Close()
}

// upgradedBody is the backend side of an upgraded (e.g. WebSocket)
// connection; ReverseProxy needs it writable.
type upgradedBody struct {
	*streamBody
	w io.Writer
}

func (u *upgradedBody) Write(p []byte) (int, error) { return u.w.Write(p) }

// EndStreams ends every open stream cleanly and makes streams that open from
// now on end at once. Shutdown calls it at the grace deadline.
func (h *Handler) EndStreams() {
	h.streams.mu.Lock()
	h.streams.ending = true
	open := make([]*streamBody, 0, len(h.streams.open))
	for b := range h.streams.open {
		open = append(open, b)
	}
	h.streams.mu.Unlock()
	for _, b := range open {
		b.end()
	}
}
