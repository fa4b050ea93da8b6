package main

import (
	"context"
	"io"
	"path/filepath"

	"github.com/swarm-ingress/swarm-ingress/pkg/certs"
	"github.com/swarm-ingress/swarm-ingress/pkg/control"
	"github.com/swarm-ingress/swarm-ingress/pkg/proxy"
)

// edgeStateFile is the edge's last state, in INGRESS_DATA_DIR.
const edgeStateFile = "edge-state"

// certSourceControl marks the certificates an edge received in /api/certs.
const certSourceControl = "control"

func runEdge(ctx context.Context, args []string, getenv func(string) string, stderr, stdout io.Writer) error {
	return edgeWith(ctx, args, getenv, stderr, stdout, proxy.Listen)
}

// edgeWith runs `ingress edge`: the public listeners, fed by the controllers
// over the control channel. It never talks to Docker.
func edgeWith(ctx context.Context, args []string, getenv func(string) string, stderr, stdout io.Writer, listen listenFunc) error {
	cfg, err := roleConfig("ingress edge", roleEdge, args, getenv, stderr)
	if err != nil || cfg == nil {
		return err // nil, nil: only the help was asked for
	}
	logs := newLogBuffer(stdout)
	defer logs.Close()
	log := newLogger(*cfg, logs)
	registry := newRegistry()
	px := proxy.New(proxy.Config{
		Logger:         log.With().Str("component", "proxy").Logger(),
		Registerer:     registry,
		TrustedProxies: cfg.TrustedProxies,
		NotFoundPage:   cfg.NotFoundPage,
		StickyKey:      cfg.ControlSecret.StickyKey(), // every edge honours every edge's sticky cookies
	})
	edge, err := control.NewEdge(control.EdgeConfig{
		Secret:      cfg.ControlSecret,
		Controllers: cfg.Controllers,
		StateFile:   filepath.Join(cfg.DataDir, edgeStateFile),
		Logger:      log.With().Str("component", "control").Logger(),
		OnTable:     px.SetTable,
	})
	if err != nil {
		return err
	}

	lns, err := bindAll(listen, cfg.HTTPAddr, cfg.HTTPSAddr, cfg.AdminAddr)
	if err != nil {
		return err
	}
	ad := admin{
		registry: registry, log: log, table: edge.Table, upstream: px.AnnotateView,
		ready: func() (bool, any) { st := edge.Status(); return st.Ready, st },
		certs: func() []certs.Status {
			out := []certs.Status{}
			for _, c := range edge.Certs() {
				out = append(out, certs.Status{Host: c.Host, Source: certSourceControl, NotAfter: c.NotAfter})
			}
			return out
		},
	}
	s := servers{
		public: []served{
			{name: "http", srv: proxy.NewServer(cfg.HTTPAddr, edge.HTTPHandler(px), nil, log), ln: lns[0]},
			{name: "https", srv: proxy.NewServer(cfg.HTTPSAddr, px, edge.TLSConfig(), log), ln: lns[1], tls: true},
		},
		admin: served{name: "admin", srv: adminServer(ad.handler()), ln: lns[2]},
	}
	log.Info().Str(fieldVersion, version).Str("role", "edge").Str("http", lns[0].Addr().String()).
		Str("https", lns[1].Addr().String()).Str("admin", lns[2].Addr().String()).Msg("ingress started")
	return s.run(ctx, log, cfg.ShutdownGrace, px, edge.Run)
}
