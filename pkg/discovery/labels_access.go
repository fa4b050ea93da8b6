package discovery

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// The access keys: limits, auth from a file, forward auth, error pages and
// maintenance (docs/labels.md, "Limits" and the sections after it). All of
// them are security keys (failclosed.go): a bad value keeps the route
// blocked.

const errorPagePart = "error_page."

// maxLimit bounds limit.rate, limit.burst and limit.conn: larger numbers are
// typing mistakes, not limits.
const maxLimit = 1_000_000

// errorPageCodes are the statuses error_page.<code> may replace: the ones
// the ingress answers itself when an upstream fails or a route is down.
var errorPageCodes = []int{502, 503, 504}

// applyAccessLabel parses one access key into r. It reports false when key
// is not an access key.
func applyAccessLabel(r *route.Route, key, v string) (bool, error) {
	var err error
	switch key {
	case "limit.rate":
		r.Limit.Rate, err = parseRate(v)
	case "limit.burst":
		r.Limit.Burst, err = parseCount(v, 0)
	case "limit.conn":
		r.Limit.Conn, err = parseCount(v, 1)
	case "auth.basic_file":
		r.BasicAuthFile, err = parseFilePath(v)
	case "auth.forward":
		r.ForwardAuth.URL, err = parseHTTPURL(v)
	case "auth.forward.headers":
		r.ForwardAuth.Headers, err = authHeaders.parse(v)
	case "maintenance":
		r.Maintenance, err = parseBool(v)
	default:
		codeText, ok := strings.CutPrefix(key, errorPagePart)
		if !ok {
			return false, nil
		}
		var p route.ErrorPage
		p, err = parseErrorPage(codeText, v)
		r.ErrorPages = append(r.ErrorPages, p)
		slices.SortFunc(r.ErrorPages, func(a, b route.ErrorPage) int { return a.Code - b.Code })
	}
	return true, err
}

// checkAccess checks the access keys that only make sense together. It
// returns the key that is missing: the error is the route's own (a
// top-level default it inherits may be fine for another route that sets
// the missing key).
func checkAccess(r *route.Route) (string, error) {
	if r.Limit.Burst > 0 && r.Limit.Rate.N == 0 {
		return "limit.rate", errors.New("not set, but limit.burst is: a burst needs a rate (e.g. 10r/s)")
	}
	if len(r.ForwardAuth.Headers) > 0 && r.ForwardAuth.URL == "" {
		return "auth.forward", errors.New("not set, but auth.forward.headers is: set the auth service's URL")
	}
	return "", nil
}

// parseRate parses "<N>r/s" or "<N>r/m" (Nginx limit_req_zone rate).
func parseRate(v string) (route.Rate, error) {
	bad := fmt.Errorf("%q is not a rate: write requests per second or per minute, e.g. 10r/s or 600r/m", v)
	n, unit, ok := strings.Cut(v, "r/")
	if !ok {
		return route.Rate{}, bad
	}
	per := map[string]time.Duration{"s": time.Second, "m": time.Minute}[unit]
	count, err := strconv.Atoi(n)
	if per == 0 || err != nil || n == "" || n[0] < '0' || n[0] > '9' {
		return route.Rate{}, bad
	}
	if count < 1 || count > maxLimit {
		return route.Rate{}, fmt.Errorf("%q: the rate must be from 1 to %d requests", v, maxLimit)
	}
	return route.Rate{N: count, Per: per}, nil
}

// parseCount parses a whole number from lowest to maxLimit.
func parseCount(v string, lowest int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || v == "" || v[0] < '0' || v[0] > '9' || n < lowest || n > maxLimit {
		return 0, fmt.Errorf("%q is not a whole number from %d to %d", v, lowest, maxLimit)
	}
	return n, nil
}

// parseFilePath accepts an absolute, clean file path: the file is read on
// every host that serves traffic (docs/labels.md, "Auth from a file").
func parseFilePath(v string) (string, error) {
	if !strings.HasPrefix(v, "/") || path.Clean(v) != v || v == "/" {
		return "", fmt.Errorf("%q is not an absolute file path (e.g. /run/secrets/htpasswd)", v)
	}
	for i := range len(v) {
		if v[i] < 0x20 || v[i] == 0x7f {
			return "", fmt.Errorf("the file path %q holds a control character", v)
		}
	}
	return v, nil
}

// parseHTTPURL accepts an absolute http or https URL with a host and no
// fragment.
func parseHTTPURL(v string) (string, error) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q is not an http or https URL (e.g. http://auth:4180/oauth2/auth), without user or fragment", v)
	}
	if a, err := netip.ParseAddr(u.Hostname()); err == nil && (a.IsLoopback() || a.IsUnspecified()) ||
		u.Hostname() == "localhost" || strings.HasSuffix(u.Hostname(), ".localhost") {
		return "", fmt.Errorf("%q names localhost, which on the ingress is the ingress itself: name the service instead", v)
	}
	for i := range len(v) {
		if v[i] <= 0x20 || v[i] == 0x7f {
			return "", fmt.Errorf("the URL %q holds a space or control character", v)
		}
	}
	return u.String(), nil
}

// authHeaders is auth.forward.headers: headers copied from the auth
// service's answer to the upstream request. Host and the forwarding headers
// stay the ingress's own.
var authHeaders = headerList{
	use:     "copied from the auth response",
	example: "X-Auth-Request-User,X-Auth-Request-Email",
	refuse:  func(name string) bool { return name == "Host" || isForwardingName(name) },
}

// isForwardingName reports the headers by which the ingress tells the
// upstream who the client is: the auth service may not overwrite them.
func isForwardingName(name string) bool {
	return name == "Forwarded" || strings.HasPrefix(name, "X-Forwarded-") || name == "X-Real-Ip"
}

// parseErrorPage parses error_page.<code> = absolute file path or http(s)
// URL.
func parseErrorPage(codeText, v string) (route.ErrorPage, error) {
	code, err := strconv.Atoi(codeText)
	if err != nil || !slices.Contains(errorPageCodes, code) {
		return route.ErrorPage{}, fmt.Errorf("error_page.%s: only the statuses 502, 503 and 504 take a page (e.g. error_page.502)", codeText)
	}
	src := v
	if strings.HasPrefix(v, "/") {
		src, err = parseFilePath(v)
	} else {
		src, err = parseHTTPURL(v)
	}
	if err != nil {
		return route.ErrorPage{}, fmt.Errorf("%q is neither an absolute file path (e.g. /run/configs/502.html) nor an http URL", v)
	}
	return route.ErrorPage{Code: code, Source: src}, nil
}
