package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/swarm-ingress/swarm-ingress/pkg/proxy"
)

// served is one HTTP server on its bound listener.
type served struct {
	name string
	srv  *http.Server
	ln   net.Listener
	tls  bool // ServeTLS with the server's TLSConfig
}

// servers are a role's HTTP servers: the public ones, drained by the proxy
// at shutdown, and the admin one, closed.
type servers struct {
	public []served
	admin  served
}

// run serves every server and runs every loop until ctx ends or one fails,
// then drains the public servers for grace (with a fresh context: ctx is
// already cancelled) and closes the admin server.
func (s servers) run(ctx context.Context, log zerolog.Logger, grace time.Duration, px *proxy.Handler, loops ...func(context.Context) error) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, sv := range append(append([]served{}, s.public...), s.admin) {
		g.Go(func() error {
			if sv.tls {
				return serveErr(sv.name, sv.srv.ServeTLS(sv.ln, "", ""))
			}
			return serveErr(sv.name, sv.srv.Serve(sv.ln))
		})
	}
	for _, loop := range loops {
		g.Go(func() error { return loop(gctx) })
	}
	g.Go(func() error {
		<-gctx.Done()
		var err error
		if px != nil {
			log.Info().Dur("grace", grace).Msg("shutting down: draining requests and streams")
			public := make([]*http.Server, 0, len(s.public))
			for _, sv := range s.public {
				public = append(public, sv.srv)
			}
			err = px.Shutdown(context.Background(), grace, public...)
			_ = px.Close() // the upstream pools' sweepers, the active health checks
		}
		s.admin.srv.Close()
		return err
	})
	err := g.Wait()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info().Msg("stopped")
	return nil
}

func serveErr(name string, err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("%s listener: %w", name, err)
}

// bindAll binds every address or none: on any failure it closes what it bound.
func bindAll(listen listenFunc, addrs ...string) ([]net.Listener, error) {
	lns := make([]net.Listener, 0, len(addrs))
	for _, addr := range addrs {
		ln, err := listen("tcp", addr)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// adminServer is the admin listener's server.
func adminServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
}
