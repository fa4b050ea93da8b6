package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

// The backend's life cycle, for tests of deploys (see the tests of pkg/discovery):
//
//	WARMUP=3s   for its first 3 s every request gets 503 ("warming up") and
//	            /healthz says 503; then /healthz says 200
//	DRAIN=5s    on SIGTERM, stop accepting and let requests in flight finish
//	            for up to 5 s (without it the process exits at once)
//	testbackend healthcheck
//	            exit 0 when the local /healthz answers 200 (a HEALTHCHECK)

// warmup holds back every request until the warm-up is over.
type warmup struct {
	until time.Time
	ready atomic.Bool
	next  http.Handler
}

func newWarmup(d time.Duration, next http.Handler) *warmup {
	return &warmup{until: time.Now().Add(d), next: next}
}

func (w *warmup) warm() bool {
	if w.ready.Load() {
		return true
	}
	if time.Now().Before(w.until) {
		return false
	}
	w.ready.Store(true)
	return true
}

func (w *warmup) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	warm := w.warm()
	switch {
	case r.URL.Path == "/healthz" && warm:
		_, _ = fmt.Fprintln(rw, "ok")
	case r.URL.Path == "/healthz" || !warm:
		http.Error(rw, "warming up", http.StatusServiceUnavailable)
	default:
		w.next.ServeHTTP(rw, r)
	}
}

// serve runs srv until it fails or, with a drain time, until SIGTERM has
// been answered by a graceful shutdown.
func serve(srv *http.Server, ln net.Listener, drain time.Duration) error {
	if drain <= 0 {
		return srv.Serve(ln)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-stop:
		ctx, cancel := context.WithTimeout(context.Background(), drain)
		defer cancel()
		return srv.Shutdown(ctx)
	}
}

// healthcheck asks the local /healthz.
func healthcheck(port string) error {
	c := &http.Client{Timeout: 2 * time.Second}
	res, err := c.Get("http://" + net.JoinHostPort("127.0.0.1", port) + "/healthz")
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("/healthz: %s", res.Status)
	}
	return nil
}

// envDuration reads a duration variable; empty is 0.
func envDuration(name string) (time.Duration, error) {
	v := os.Getenv(name)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s=%q is not a duration such as 3s", name, v)
	}
	return d, nil
}
