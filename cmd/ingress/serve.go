package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"sync/atomic"

	"github.com/docker/docker/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/swarm-ingress/swarm-ingress/pkg/certs"
	"github.com/swarm-ingress/swarm-ingress/pkg/certs/swarmcache"
	"github.com/swarm-ingress/swarm-ingress/pkg/control"
	"github.com/swarm-ingress/swarm-ingress/pkg/discovery"
	"github.com/swarm-ingress/swarm-ingress/pkg/proxy"
	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// listenFunc binds a listener; tests replace it to prove nothing binds early.
type listenFunc func(network, addr string) (net.Listener, error)

func runServe(ctx context.Context, args []string, getenv func(string) string, stderr, stdout io.Writer) error {
	return serveWith(ctx, args, getenv, stderr, stdout, proxy.Listen)
}

func runController(ctx context.Context, args []string, getenv func(string) string, stderr, stdout io.Writer) error {
	return appWith(ctx, roleController, args, getenv, stderr, stdout, net.Listen)
}

// serveWith is runServe with the listen function injected: settings and every
// component are checked before anything binds.
func serveWith(ctx context.Context, args []string, getenv func(string) string, stderr, stdout io.Writer, listen listenFunc) error {
	return appWith(ctx, roleServe, args, getenv, stderr, stdout, listen)
}

// roleConfig reads and checks the settings of role r (named name in the
// usage): every problem at once, before anything starts. It returns nil and
// no error when only the help was asked for.
func roleConfig(name string, r role, args []string, getenv func(string) string, stderr io.Writer) (*Config, error) {
	values, rest, err := loadSettings(name, args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("unexpected arguments %q; settings are flags like --ingress-http-addr=:80", rest)
	}
	cfg, err := parseConfig(values, r)
	if err != nil {
		return nil, err
	}
	return &cfg, nil
}

// appWith runs `ingress serve` or `ingress controller`, the roles that read Docker.
func appWith(ctx context.Context, r role, args []string, getenv func(string) string, stderr, stdout io.Writer, listen listenFunc) error {
	name := "ingress serve"
	if r == roleController {
		name = "ingress controller"
	}
	cfg, err := roleConfig(name, r, args, getenv, stderr)
	if err != nil || cfg == nil {
		return err // nil, nil: only the help was asked for
	}
	logs := newLogBuffer(stdout)
	defer logs.Close()
	log := newLogger(*cfg, logs)
	a, err := newApp(*cfg, r, log)
	if err != nil {
		return err
	}
	return a.run(ctx, listen)
}

// app is one running ingress that reads Docker: discovery feeding the
// certificate manager and either the proxy (serve) or the control channel
// (controller).
type app struct {
	cfg      Config
	role     role
	log      zerolog.Logger
	registry *prometheus.Registry
	docker   *client.Client
	watcher  *discovery.Watcher
	proxy    *proxy.Handler  // serve only
	control  *control.Server // controller only
	certs    *certs.Manager
	store    *swarmcache.Store           // with INGRESS_CACHE=swarm, else nil
	table    atomic.Pointer[route.Table] // last published table, for the admin API
	ready    atomic.Bool                 // the first complete table (Swarm read) was built
	kicked   chan struct{}               // cap 1: a table was published (the controller re-sends certificates)
}

// newApp builds every component; nothing listens yet. A component that
// refuses its configuration (say, an unusable cache key) fails here.
func newApp(cfg Config, r role, log zerolog.Logger) (*app, error) {
	a := &app{cfg: cfg, role: r, log: log, registry: newRegistry(), kicked: make(chan struct{}, 1)}

	docker, err := discovery.NewClient()
	if err != nil {
		return nil, fmt.Errorf("docker client (check DOCKER_HOST): %w", err)
	}
	a.docker = docker
	cache, locker, err := newCache(cfg, docker, log)
	if err != nil {
		return nil, err
	}
	a.store, _ = cache.(*swarmcache.Store)
	var challenges certs.Challenges
	if r == roleController {
		a.control, err = control.NewServer(control.ServerConfig{
			Secret: cfg.ControlSecret,
			Logger: log.With().Str("component", "control").Logger(),
		})
		if err != nil {
			return nil, err
		}
		challenges = a.control.Challenges()
	}
	a.certs, err = certs.New(certs.Config{
		DataDir:       cfg.DataDir,
		CertsDir:      cfg.CertsDir,
		CA:            cfg.ACMECA,
		CARoots:       cfg.ACMECARoots,
		ChallengeType: cfg.ACMEChallenge,
		Email:         cfg.ACMEEmail,
		Cache:         cache,
		Locker:        locker,
		Challenges:    challenges,
		Logger:        log.With().Str("component", "certs").Logger(),
		Registerer:    a.registry,
	})
	if err != nil {
		return nil, err
	}
	if r == roleServe {
		a.proxy = proxy.New(proxy.Config{
			Logger:         log.With().Str("component", "proxy").Logger(),
			Registerer:     a.registry,
			TrustedProxies: cfg.TrustedProxies,
			NotFoundPage:   cfg.NotFoundPage,
		})
	}
	a.watcher, err = discovery.NewWatcher(discovery.Config{
		Docker:         docker,
		LabelPrefix:    cfg.LabelPrefix,
		Networks:       cfg.Networks,
		NetworkSetting: "INGRESS_NETWORK",
		RoutesFile:     cfg.RoutesFile,
		Logger:         log.With().Str("component", "discovery").Logger(),
		Publish:        a.publish,
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
	if a.proxy != nil {
		a.proxy.SetTable(t)
	}
	if a.control != nil {
		a.control.SetTable(t)
	}
	a.certs.SetTable(t)
	a.table.Store(t)
	if !t.Partial {
		a.ready.Store(true)
	}
	select {
	case a.kicked <- struct{}{}:
	default:
	}
}

// run binds the listeners (all or none), serves until ctx ends, then drains.
func (a *app) run(ctx context.Context, listen listenFunc) error {
	addrs := []string{a.cfg.HTTPAddr, a.cfg.HTTPSAddr, a.cfg.AdminAddr}
	if a.role == roleController {
		addrs = []string{a.cfg.ControlAddr, a.cfg.AdminAddr}
	}
	lns, err := bindAll(listen, addrs...)
	if err != nil {
		return err
	}
	loops := []func(context.Context) error{a.certs.Run}
	if werr := a.checkManager(ctx); werr != nil {
		a.log.Error().Err(werr).Msg("cannot read the cluster from this node")
		a.table.Store(route.New(route.Snapshot{Errors: []route.Error{{Error: werr.Error()}}}))
		if a.role == roleController {
			closeAll(lns)
			return werr
		}
	} else {
		loops = append(loops, a.watcher.Run)
	}
	if a.store != nil {
		loops = append(loops, func(ctx context.Context) error { return a.pruneCache(ctx, a.store) })
	}
	s := servers{admin: served{name: "admin", srv: adminServer(a.adminHandler()), ln: lns[len(lns)-1]}}
	ev := a.log.Info().Str(fieldVersion, version).Str("admin", lns[len(lns)-1].Addr().String())
	if a.role == roleController {
		// autocert offers http-01 only once HTTPHandler was asked for; the
		// edges answer it.
		a.certs.HTTPHandler(nil)
		loops = append(loops, func(ctx context.Context) error { return a.control.Serve(ctx, lns[0]) }, a.pushCerts)
		ev = ev.Str("role", "controller").Str("control", lns[0].Addr().String())
	} else {
		s.public = []served{
			{name: "http", srv: proxy.NewServer(a.cfg.HTTPAddr, a.certs.HTTPHandler(a.proxy), nil, a.log), ln: lns[0]},
			{name: "https", srv: proxy.NewServer(a.cfg.HTTPSAddr, a.proxy, a.certs.TLSConfig(), a.log), ln: lns[1], tls: true},
		}
		ev = ev.Str("role", "serve").Str("http", lns[0].Addr().String()).Str("https", lns[1].Addr().String())
	}
	ev.Msg("ingress started")
	return s.run(ctx, a.log, a.cfg.ShutdownGrace, a.proxy, loops...)
}

func closeAll(lns []net.Listener) {
	for _, l := range lns {
		l.Close()
	}
}
