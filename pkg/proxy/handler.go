package proxy

// API STUB written by the lead: the contract cmd/ingress uses. The proxy owner
// replaces the bodies (and may split the file), keeping names and meanings.

import (
	"crypto/tls"
	"net/http"
	"net/netip"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// Config configures a Handler.
type Config struct {
	Logger         zerolog.Logger        // access log and errors; default disabled
	Registerer     prometheus.Registerer // nil: no metrics
	TrustedProxies []netip.Prefix        // clients whose X-Forwarded-* headers are believed
}

// Handler serves the current route table. A request that arrives without TLS
// on a route with tls=auto and redirect=true is redirected to HTTPS (308).
type Handler struct {
	cfg   Config
	table atomic.Pointer[route.Table]
}

// New returns a Handler with an empty table (every request gets 404).
func New(cfg Config) *Handler { return &Handler{cfg: cfg} }

// SetTable atomically replaces the table; in-flight requests keep theirs.
func (h *Handler) SetTable(t *route.Table) { h.table.Store(t) }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }

// NewServer returns an http.Server hardened for the internet (header timeout
// and size, idle timeout, no write timeout so streams can live). tlsConfig may
// be nil for the plain HTTP listener.
func NewServer(addr string, h http.Handler, tlsConfig *tls.Config, log zerolog.Logger) *http.Server {
	return &http.Server{Addr: addr, Handler: h, TLSConfig: tlsConfig}
}
