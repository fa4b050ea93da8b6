package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Forward auth (label auth.forward; Nginx auth_request; docs/labels.md,
// "Forward auth"). Before a request goes upstream, a GET sub-request is
// sent to the auth service with the client's headers (Cookie and
// Authorization included) and the original request described in
// X-Forwarded-Method, -Uri, -Host, -Proto and -For. A 2xx answer lets the
// request through, with the headers auth.forward.headers lists copied from
// the answer onto the upstream request (replacing whatever the client sent
// under those names). Any other answer (401, 403, a 302 to a login page)
// is returned to the client as the auth service sent it: status, headers
// (Location, Set-Cookie, WWW-Authenticate, ...) and body. An auth service
// that cannot be reached, or does not answer within forwardAuthTimeout,
// gets 503: closed, never open.

const (
	// forwardAuthTimeout bounds one sub-request, answer headers included.
	forwardAuthTimeout = 5 * time.Second
	// maxForwardAuthBody bounds the body of a refusal relayed to the client.
	maxForwardAuthBody = 1 << 20
)

// fieldAuthURL is the log field naming the auth service.
const fieldAuthURL = "auth_url"

// newForwardAuthClient is the client of every route's sub-requests: IPv4,
// no proxy from the environment, redirects not followed (a 302 to a login
// page is the answer), bodies left as they are encoded.
func newForwardAuthClient() *http.Client {
	d := &net.Dialer{Timeout: forwardAuthTimeout, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				return d.DialContext(ctx, "tcp4", addr)
			},
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: forwardAuthTimeout,
			DisableCompression:  true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// checkForwardAuth runs auth.forward for r. When it returns false it has
// answered the request.
func (rs *routeState) checkForwardAuth(ex *exchange, r *http.Request) bool {
	fa := rs.route.ForwardAuth
	ctx, cancel := context.WithTimeout(r.Context(), rs.h.acc.authTimeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fa.URL, nil)
	if err != nil { // the URL was checked by discovery; never open
		rs.writeError(ex, http.StatusServiceUnavailable)
		return false
	}
	rs.authHeaders(req.Header, ex, r)
	res, err := rs.h.acc.authClient.Do(req)
	if err != nil {
		ex.err = err
		if r.Context().Err() == nil {
			rs.h.log.Warn().Str(fieldRoute, rs.id).Str(fieldAuthURL, fa.URL).Err(err).Msg("forward auth: no answer from the auth service; the request gets 503")
		}
		rs.writeError(ex, http.StatusServiceUnavailable)
		return false
	}
	defer res.Body.Close()
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		for _, name := range fa.Headers {
			delete(r.Header, name) // the client's own value never passes as the auth service's
			if v := res.Header[name]; len(v) > 0 {
				r.Header[name] = v
			}
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10)) // lets the connection be reused
		return true
	}
	// Refused: the auth service's answer, as it is.
	h := ex.Header()
	rs.setHeaders(h)
	removeHopHeaders(res.Header)
	for k, v := range res.Header {
		if k != "Content-Length" {
			h[k] = v
		}
	}
	if res.ContentLength > 0 && res.ContentLength <= maxForwardAuthBody {
		h.Set("Content-Length", strconv.FormatInt(res.ContentLength, 10))
	}
	ex.WriteHeader(res.StatusCode)
	if r.Method != http.MethodHead {
		_, _ = io.Copy(ex, io.LimitReader(res.Body, maxForwardAuthBody))
	}
	return false
}

// authHeaders fills the sub-request's headers: the client's (without the
// hop-by-hop ones and those describing a body, and without forwarding
// headers unless the client is a trusted proxy), then the original request
// in X-Forwarded-*. The URI is the canonical one the route matched (docs/
// labels.md, "Paths"), so the auth service's rules see the path the
// upstream serves.
func (rs *routeState) authHeaders(h http.Header, ex *exchange, r *http.Request) {
	for k, v := range r.Header {
		switch {
		case isHopHeader(k), k == "Content-Length", k == "Content-Type", k == "Expect",
			isForwardingHeader(k) && !ex.trusted:
			continue
		}
		h[k] = v
	}
	for _, v := range r.Header["Connection"] { // and the ones Connection names
		for f := range strings.SplitSeq(v, ",") {
			h.Del(strings.TrimSpace(f))
		}
	}
	h[requestIDHeader] = []string{ex.requestID} // the request's id, as the upstream gets it (requestid.go)
	proto := "http"
	if rs.h.secure(r, ex.trusted) {
		proto = "https"
	}
	h.Set("X-Forwarded-Method", r.Method)
	h.Set("X-Forwarded-Uri", r.URL.RequestURI())
	h.Set("X-Forwarded-Host", r.Host)
	h.Set("X-Forwarded-Proto", proto)
	if a := rs.h.clientIP(r, ex); a.IsValid() {
		h.Set("X-Forwarded-For", a.String())
	} else {
		h.Del("X-Forwarded-For")
	}
}
