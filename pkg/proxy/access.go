package proxy

import (
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// The access steps of a route, after the checks of match.go and policy.go,
// in this order (docs/labels.md, "Order of checks"):
//
//	blocked → encoded slashes                           (match.go)
//	→ HTTPS redirect → allow                            (policy.go)
//	→ limit.conn → limit.rate                           (limit.go)
//	→ auth.basic → auth.basic_file                      (auth.go, authfile.go)
//	→ auth.forward                                      (forwardauth.go)
//	→ maintenance                                       (errorpage.go)
//	→ max_body                                          (policy.go)
//	→ the upstream                                      (outbound.go)
//
// Limits come first so that a flood of guesses costs no bcrypt comparison
// and no sub-request to the auth service; maintenance comes after the auth
// steps so that a client that may not see the route learns nothing of its
// state.

// access runs the route's access steps. When it returns false it has
// answered the request. A limit.conn slot the request takes is freed when
// the request is recorded (limitHeld).
func (rs *routeState) access(ex *exchange, r *http.Request) bool {
	rt := rs.route
	if rs.limit != nil && !rs.limitRequest(ex, r) {
		return false
	}
	if rs.files.htpasswd != nil {
		if !rs.checkBasicFile(ex, r) { // authfile.go: its users and those of auth.basic
			return false
		}
	} else if len(rt.BasicAuth) > 0 && !rs.h.auth.check(rt.BasicAuth, r) {
		ex.Header().Set("WWW-Authenticate", rs.challenge)
		rs.writeError(ex, http.StatusUnauthorized)
		return false
	}
	if rt.ForwardAuth.URL != "" && !rs.checkForwardAuth(ex, r) { // forwardauth.go
		return false
	}
	if rt.Maintenance {
		rs.maintenance(ex) // errorpage.go
		return false
	}
	return true
}

// limitRequest runs limit.conn and limit.rate for the client's address (as
// resolved with the trusted proxies, like allow). A refused request gets
// 429 with Retry-After.
func (rs *routeState) limitRequest(ex *exchange, r *http.Request) bool {
	l := rs.limit
	e, ok, retry := l.admit(limitKey(rs.h.clientIP(r, ex)), rs.h.clock())
	if !ok {
		secs := int64(1) // limit.conn: a slot may free at any time
		if retry > 0 {
			secs = max(1, int64((retry+time.Second-1)/time.Second))
		}
		ex.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		rs.writeError(ex, http.StatusTooManyRequests)
		return false
	}
	if e != nil {
		ex.held = limitHeld{l, e}
	}
	return true
}

// limitHeld is the limit.conn slot a request holds, if any. It is freed
// when the request is recorded, after a hijacked stream too.
type limitHeld struct {
	l *limiter
	e *limitEntry
}

func (h *limitHeld) release() {
	if h.e != nil {
		h.l.release(h.e)
		*h = limitHeld{}
	}
}

// accessShared is the access state a Handler keeps across table swaps.
type accessShared struct {
	limiters, next map[limiterKey]*limiter // under Handler.mu

	// Files by path, shared by the routes that name them, under Handler.mu.
	htpasswd, nextHtpasswd map[string]*polledFile[[]route.BasicUser]
	pages, nextPages       map[string]pageSource // by file path or URL

	authClient *http.Client  // forward auth sub-requests; made before the first table
	authWait   time.Duration // tests only: forwardAuthTimeout when 0
}

func (a *accessShared) authTimeout() time.Duration {
	if a.authWait > 0 {
		return a.authWait
	}
	return forwardAuthTimeout
}

// routeFiles are the files a route reads (authfile.go, errorpage.go).
type routeFiles struct {
	htpasswd *polledFile[[]route.BasicUser] // nil without auth.basic_file
	pages    map[int]pageSource             // error_page.<code>; nil without
}

// limiterKey names a route's limiter: a route keeps its addresses' state
// across table swaps while its limits stay the same.
type limiterKey struct {
	id  string
	cfg route.Limit
}

// prepareAccess gives rs what its access steps need. It runs under h.mu,
// from prepare.
func (h *Handler) prepareAccess(rs *routeState) {
	if cfg := rs.route.Limit; cfg.Enabled() && rs.route.Blocked == "" {
		k := limiterKey{rs.id, cfg}
		l := h.acc.limiters[k]
		if l == nil {
			l = newLimiter(cfg, h.clock())
		}
		if h.acc.next == nil {
			h.acc.next = map[limiterKey]*limiter{}
		}
		h.acc.next[k], rs.limit = l, l
	}
	if path := rs.route.BasicAuthFile; path != "" && rs.route.Blocked == "" {
		f := h.acc.htpasswd[path]
		if f == nil {
			f = newPolledFile(path, "auth.basic_file", parseHtpasswd, h.log)
		}
		if h.acc.nextHtpasswd == nil {
			h.acc.nextHtpasswd = map[string]*polledFile[[]route.BasicUser]{}
		}
		h.acc.nextHtpasswd[path], rs.files.htpasswd = f, f
	}
	for _, p := range rs.route.ErrorPages {
		if rs.route.Blocked != "" {
			break
		}
		src := h.acc.pages[p.Source]
		if src == nil {
			if filepath.IsAbs(p.Source) {
				src = newFilePage(p.Source, h.log)
			} else {
				src = &urlPage{url: p.Source, client: h.acc.authClient, log: h.log}
			}
		}
		if h.acc.nextPages == nil {
			h.acc.nextPages = map[string]pageSource{}
		}
		if rs.files.pages == nil {
			rs.files.pages = map[int]pageSource{}
		}
		h.acc.nextPages[p.Source], rs.files.pages[p.Code] = src, src
	}
}

// swapAccess drops the state of routes the new table no longer has. It
// runs under h.mu, at the end of build.
func (h *Handler) swapAccess() {
	h.acc.limiters, h.acc.next = h.acc.next, nil
	h.acc.htpasswd, h.acc.nextHtpasswd = h.acc.nextHtpasswd, nil
	h.acc.pages, h.acc.nextPages = h.acc.nextPages, nil
}

// clock is the handler's clock (Config.Now).
func (h *Handler) clock() time.Time {
	if h.cfg.Now != nil {
		return h.cfg.Now()
	}
	return time.Now()
}
