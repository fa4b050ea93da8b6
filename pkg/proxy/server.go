package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Server limits. There is deliberately no ReadTimeout or WriteTimeout: they
// would cut long uploads, event streams and WebSockets. Slow clients are
// bounded by the header timeout, the header size limit and the idle timeout
// here, and per read and write by the routes' bounds (bounds.go).
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10

	// streamEndWait is how long Shutdown waits, after ending the streams at
	// the grace deadline, for their responses to finish before it closes
	// every connection.
	streamEndWait = 2 * time.Second
)

// NewServer returns an http.Server hardened for the internet (header timeout
// and size, idle timeout, no write timeout so streams can live). tlsConfig may
// be nil for the plain HTTP listener; with one, HTTP/2 is offered by ALPN.
// The server's own error log goes to log at debug level.
func NewServer(addr string, h http.Handler, tlsConfig *tls.Config, log zerolog.Logger) *http.Server {
	var p http.Protocols
	p.SetHTTP1(true)
	if tlsConfig != nil {
		p.SetHTTP2(true)
	}
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		TLSConfig:         tlsConfig,
		Protocols:         &p,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          newErrorLog(log),
	}
}

// Listen opens a listener whose connections probe an idle peer with TCP
// keep-alive (see keepAlive), so that a stream to a client that vanished
// without closing ends within about a minute.
func Listen(network, addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAliveConfig: keepAlive}
	return lc.Listen(context.Background(), network, addr)
}

// Shutdown drains servers: they stop accepting at once and close idle
// connections; requests in flight and open streams get until grace to
// finish. At the grace deadline the open streams are ended cleanly (see
// EndStreams: an event stream's client sees the end of the body, not a
// reset) and, streamEndWait later, every connection still open is closed.
// Cancelling ctx skips the rest of the grace. The result is nil when every
// server drained in time.
//
// cmd/ingress calls it on SIGTERM with its shutdown grace setting, passing a
// context that is not already cancelled.
func (h *Handler) Shutdown(ctx context.Context, grace time.Duration, servers ...*http.Server) error {
	graceCtx, cancelGrace := context.WithTimeout(ctx, grace)
	defer cancelGrace()
	hardCtx, cancelHard := context.WithTimeout(ctx, grace+streamEndWait)
	defer cancelHard()

	ended := make(chan struct{})
	go func() {
		defer close(ended)
		<-graceCtx.Done()
		h.EndStreams()
	}()

	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Go(func() {
			if err := s.Shutdown(hardCtx); err != nil {
				errs[i] = errors.Join(err, s.Close())
			}
		})
	}
	wg.Wait()
	// Upgraded connections (WebSockets) are hijacked: the servers no longer
	// track them, so wait for them here, up to the grace.
	select {
	case <-h.streams.drained():
	case <-graceCtx.Done():
	}
	cancelGrace()
	<-ended
	// So are HTTP/1.1 streams (hijack.go): EndStreams ended them; wait
	// for their last chunk as the servers wait for their handlers.
	select {
	case <-h.streams.h1Drained():
	case <-hardCtx.Done():
	}
	return errors.Join(errs...)
}

// Close stops what the Handler runs in the background (the HTTP/1.1
// client's pool sweepers) and closes idle upstream connections. Call it
// once the servers are shut down (after Shutdown): a request served after
// Close still works, but its upstream connection is not pooled.
func (h *Handler) Close() error {
	h.mu.Lock()
	defer h.health.checks.wait() // after the unlock: the checkers end without h.mu
	defer h.mu.Unlock()
	h.closeTransports()
	h.health.checks.stop()
	return nil
}

// newErrorLog routes the standard library's server messages (TLS handshake
// errors, bad requests) to zerolog at debug level.
func newErrorLog(l zerolog.Logger) *log.Logger {
	return log.New(debugWriter{l}, "", 0)
}

type debugWriter struct{ l zerolog.Logger }

func (w debugWriter) Write(p []byte) (int, error) {
	w.l.Debug().Str("error", strings.TrimSpace(string(p))).Msg("http server")
	return len(p), nil
}
