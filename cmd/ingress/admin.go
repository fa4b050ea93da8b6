package main

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/swarm-ingress/swarm-ingress/pkg/certs"
	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// admin is what the admin listener reports; every role fills it in.
type admin struct {
	registry *prometheus.Registry
	log      zerolog.Logger
	ready    func() (bool, any)    // ready, and a detail: a string is sent as plain text, anything else as JSON (nil: "ready" or "no route table yet")
	table    func() *route.Table   // the table in use (nil before the first)
	certs    func() []certs.Status // the certificates served
	upstream func(*route.View)     // adds the proxy's upstream health; nil where no proxy serves
}

// view is the table in its API shape, with the proxy's upstream health.
func (ad admin) view() route.View {
	v := ad.table().View()
	if ad.upstream != nil {
		ad.upstream(&v)
	}
	return v
}

// adminHandler serves the admin listener: health, readiness, metrics, the
// route and certificate APIs and the status page (docs/admin-api.md).
func (a *app) adminHandler() http.Handler {
	ad := admin{
		registry: a.registry, log: a.log,
		ready: func() (bool, any) {
			if t := a.table.Load(); !a.ready.Load() && t != nil && t.Partial {
				return false, "serving the routes file only: the Swarm services are not read yet (is Docker reachable?)"
			}
			return a.ready.Load(), nil
		},
		table: a.table.Load, certs: a.certs.Status,
	}
	if a.proxy != nil {
		ad.upstream = a.proxy.AnnotateView
	}
	return ad.handler()
}

func (ad admin) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		plain(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ready, detail := ad.ready()
		code := http.StatusOK
		if !ready {
			code = http.StatusServiceUnavailable
		}
		switch msg, isText := detail.(string); {
		case isText:
			plain(w, code, msg)
		case detail != nil:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			enc.Encode(detail)
		case ready:
			plain(w, code, "ready")
		default:
			plain(w, code, "no route table yet")
		}
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(ad.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /api/routes", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, ad.view())
	})
	mux.HandleFunc("GET /api/match", ad.match) // explain.go
	mux.HandleFunc("GET /api/certs", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, ad.certs())
	})
	mux.HandleFunc("GET /{$}", ad.statusPage)
	return mux
}

func plain(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	w.Write([]byte(msg + "\n"))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
