package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/swarm-ingress/swarm-ingress/pkg/certs"
	"github.com/swarm-ingress/swarm-ingress/pkg/certs/swarmcache"
	"github.com/swarm-ingress/swarm-ingress/pkg/discovery"
	"github.com/swarm-ingress/swarm-ingress/pkg/proxy"
	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// listenFunc binds a listener; tests replace it to prove nothing binds early.
type listenFunc func(network, addr string) (net.Listener, error)

func runServe(ctx context.Context, args []string, getenv func(string) string, stderr, stdout io.Writer) error {
	return serveWith(ctx, args, getenv, stderr, stdout, proxy.Listen)
}

// serveWith is runServe with the listen function injected: settings and every
// component are checked before anything binds.
func serveWith(ctx context.Context, args []string, getenv func(string) string, stderr, stdout io.Writer, listen listenFunc) error {
	values, rest, err := loadSettings("ingress serve", args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected arguments %q; settings are flags like --ingress-http-addr=:80", rest)
	}
	cfg, err := parseConfig(values, true)
	if err != nil {
		return err
	}
	logs := newLogBuffer(stdout)
	defer logs.Close()
	log := newLogger(cfg, logs)
	a, err := newApp(cfg, log)
	if err != nil {
		return err
	}
	return a.run(ctx, listen)
}

// app is one running ingress: discovery feeding the proxy and the
// certificate manager, and the three listeners.
type app struct {
	cfg      Config
	log      zerolog.Logger
	registry *prometheus.Registry
	watcher  *discovery.Watcher
	proxy    *proxy.Handler
	certs    *certs.Manager
	store    *swarmcache.Store           // with INGRESS_CACHE=swarm, else nil
	table    atomic.Pointer[route.Table] // last published table, for the admin API
	ready    atomic.Bool                 // the first table was built
}

// newApp builds every component; nothing listens yet. A component that
// refuses its configuration (say, an unusable cache key) fails here.
func newApp(cfg Config, log zerolog.Logger) (*app, error) {
	a := &app{cfg: cfg, log: log, registry: newRegistry()}

	docker, err := discovery.NewClient()
	if err != nil {
		return nil, fmt.Errorf("docker client (check DOCKER_HOST): %w", err)
	}
	cache, locker, err := newCache(cfg, docker, log)
	if err != nil {
		return nil, err
	}
	a.store, _ = cache.(*swarmcache.Store)
	a.certs, err = certs.New(certs.Config{
		DataDir:    cfg.DataDir,
		CertsDir:   cfg.CertsDir,
		CA:         cfg.ACMECA,
		CARoots:    cfg.ACMECARoots,
		Email:      cfg.ACMEEmail,
		Cache:      cache,
		Locker:     locker,
		Logger:     log.With().Str("component", "certs").Logger(),
		Registerer: a.registry,
	})
	if err != nil {
		return nil, err
	}
	a.proxy = proxy.New(proxy.Config{
		Logger:         log.With().Str("component", "proxy").Logger(),
		Registerer:     a.registry,
		TrustedProxies: cfg.TrustedProxies,
	})
	a.watcher, err = discovery.NewWatcher(discovery.Config{
		Docker:      docker,
		LabelPrefix: cfg.LabelPrefix,
		Networks:    cfg.Networks,
		RoutesFile:  cfg.RoutesFile,
		Logger:      log.With().Str("component", "discovery").Logger(),
		Publish:     a.publish,
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// newRegistry is the admin /metrics registry, with Go and process metrics.
func newRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// publish hands a new table to every reader. Each stores it atomically.
func (a *app) publish(t *route.Table) {
	a.proxy.SetTable(t)
	a.certs.SetTable(t)
	a.table.Store(t)
	a.ready.Store(true)
}

// run binds the listeners (all or none), serves until ctx ends, then drains.
func (a *app) run(ctx context.Context, listen listenFunc) error {
	lns, err := bindAll(listen, a.cfg.HTTPAddr, a.cfg.HTTPSAddr, a.cfg.AdminAddr)
	if err != nil {
		return err
	}
	httpLn, httpsLn, adminLn := lns[0], lns[1], lns[2]

	httpSrv := proxy.NewServer(a.cfg.HTTPAddr, a.certs.HTTPHandler(a.proxy), nil, a.log)
	httpsSrv := proxy.NewServer(a.cfg.HTTPSAddr, a.proxy, a.certs.TLSConfig(), a.log)
	adminSrv := &http.Server{Handler: a.adminHandler(), ReadHeaderTimeout: 5 * time.Second}
	a.log.Info().Str(fieldVersion, version).Str("http", httpLn.Addr().String()).
		Str("https", httpsLn.Addr().String()).Str("admin", adminLn.Addr().String()).Msg("ingress started")

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveErr("http", httpSrv.Serve(httpLn)) })
	g.Go(func() error { return serveErr("https", httpsSrv.ServeTLS(httpsLn, "", "")) })
	g.Go(func() error { return serveErr("admin", adminSrv.Serve(adminLn)) })
	g.Go(func() error { return a.watcher.Run(gctx) })
	g.Go(func() error { return a.certs.Run(gctx) })
	if a.store != nil {
		g.Go(func() error { return a.pruneCache(gctx, a.store) })
	}
	g.Go(func() error {
		<-gctx.Done()
		a.log.Info().Dur("grace", a.cfg.ShutdownGrace).Msg("shutting down: draining requests and streams")
		// A fresh context: gctx is already cancelled.
		err := a.proxy.Shutdown(context.Background(), a.cfg.ShutdownGrace, httpSrv, httpsSrv)
		adminSrv.Close()
		return err
	})
	err = g.Wait()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	a.log.Info().Msg("stopped")
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
