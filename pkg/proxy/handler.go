package proxy

import (
	"log"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// Config configures a Handler.
type Config struct {
	Logger         zerolog.Logger        // access log and errors; default disabled
	Registerer     prometheus.Registerer // nil: no metrics
	TrustedProxies []netip.Prefix        // clients whose X-Forwarded-* headers are believed
	// StickyKey signs sticky cookies (sticky.go); nil: a random key per
	// Handler. Edges get one derived from the control secret.
	StickyKey []byte
	Now       func() time.Time // the clock of slow start (slowstart.go), limits and file polling (access.go); nil: time.Now
	// NotFoundPage is a file answered (with 404) for requests no route
	// serves; "" or unreadable: the plain-text body (errorpage.go).
	NotFoundPage string
}

// Handler serves the current route table. A request that arrives without TLS
// on a route with tls=auto and redirect=true is redirected to HTTPS (308).
//
// The table and everything prepared from it (one ReverseProxy per route,
// balancer state, metric handles) sit behind one atomic pointer, loaded once
// per request; SetTable builds the next state and swaps it in, so requests in
// flight and open streams keep the state they started with.
type Handler struct {
	cfg       Config
	log       zerolog.Logger
	errorLog  *log.Logger // ReverseProxy's own messages, at debug level
	metrics   *metrics
	state     atomic.Pointer[state]
	streams   streams
	auth      authCache
	stickyKey []byte            // sticky.go
	acc       accessShared      // limiters, files kept across swaps (access.go)
	notFound  *polledFile[page] // Config.NotFoundPage (errorpage.go); nil: plain text

	mu         sync.Mutex                         // serialises SetTable
	transports map[transportKey]http.RoundTripper // kept across swaps: connection pools survive
	upstreams  map[netip.AddrPort]*upstream       // balancer state, kept across swaps
	routeStats map[string]*routeMetrics           // by route ID, kept across swaps
	health     healthShared                       // outlier ejection and active checks (health.go)
	dialHook   dialFunc                           // tests: dials every scheme=http upstream (transport.go)
}

// retryAfterStarting is the Retry-After of the 503 answered before the first
// complete table: discovery builds it within a second of reaching Docker.
const retryAfterStarting = "1"

// New returns a Handler without a table: every request gets 503 with
// Retry-After until SetTable gives it one.
func New(cfg Config) *Handler {
	h := &Handler{
		cfg:        cfg,
		log:        cfg.Logger,
		errorLog:   newErrorLog(cfg.Logger),
		metrics:    newMetrics(cfg.Registerer, cfg.Logger),
		transports: map[transportKey]http.RoundTripper{},
		upstreams:  map[netip.AddrPort]*upstream{},
		routeStats: map[string]*routeMetrics{},
		stickyKey:  stickyKeyOf(cfg),
	}
	h.streams.open = map[*streamBody]struct{}{}
	h.acc.authClient = newForwardAuthClient()
	if cfg.NotFoundPage != "" {
		h.notFound = newFilePage(cfg.NotFoundPage, cfg.Logger)
	}
	h.health.init(h)
	h.SetTable(nil)
	return h
}

// SetTable atomically replaces the table; in-flight requests keep theirs.
// With a nil or partial table (route.Table.Partial), a request that matches
// no route gets 503 with Retry-After instead of 404.
func (h *Handler) SetTable(t *route.Table) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.state.Store(h.build(t))
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 2 {
		growStack() // stackgrow.go
	}
	ex := &exchange{ResponseWriter: w, start: time.Now(), stats: h.metrics.unmatched, wbound: route.DefaultClientWriteTimeout}
	ex.peer, ex.trusted = h.peer(r)
	assignRequestID(ex, r)
	boundConnWrites(w, r, 0) // the last response's bound may linger on a kept-alive connection
	defer h.finish(ex, r)
	if r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 {
		// net/http reads a chunked body and drops any Content-Length that
		// came with it; a client that sent both may be smuggling a request
		// past a front proxy that believed the Content-Length. RFC 9112
		// section 6.1: close the connection after the response, so that
		// nothing after this body is read as another request.
		w.Header().Set("Connection", "close")
	}

	rs := h.match(ex, r) // match.go
	if rs == nil {
		return
	}
	if !rs.admit(ex, r) { // policy.go
		return
	}
	if cw := rs.compressor(ex, r); cw != nil { // compress.go
		defer cw.finish()
	}
	rs.forward(ex, r) // outbound.go
}
