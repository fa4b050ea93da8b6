package main

import (
	_ "embed"
	"html/template"
	"net/http"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/certs"
	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

//go:embed status.html
var statusHTML string

var statusTmpl = template.Must(template.New("status").Funcs(template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return time.Since(t).Round(time.Second).String() + " ago"
	},
	"date": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
}).Parse(statusHTML))

type statusData struct {
	Version string
	Ready   bool
	Table   route.View
	Certs   []certs.Status
}

// statusPage renders the same data as /api/routes and /api/certs for humans.
func (ad admin) statusPage(w http.ResponseWriter, r *http.Request) {
	ready, _ := ad.ready()
	data := statusData{Version: version, Ready: ready, Table: ad.view(), Certs: ad.certs()}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := statusTmpl.Execute(w, data); err != nil {
		ad.log.Error().Err(err).Msg("render status page")
	}
}
