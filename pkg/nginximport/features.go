package nginximport

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/swarm-ingress/swarm-ingress/pkg/nginxconf"
)

// The directives a location inherits from its server and http block, each
// turned into its labels (docs/import-nginx.md, "Mapping").

// features sets the labels of the directives a location inherits.
func (t *translator) features(b *build, s *server, l *location) {
	sc := l.scope
	t.access(b, sc.all("access"))
	t.basicAuth(b, sc)
	t.forwardAuth(b, s, sc)
	t.limits(b, sc)
	if d := sc.last("client_max_body_size"); d != nil {
		if n, ok := nginxSize(d.Arg(0)); ok {
			if n != "0" {
				b.set("max_body", n)
			}
			t.done(d)
		} else {
			t.drop(d, "not a size")
		}
	}
	t.timeouts(b, sc)
	t.requestHeaders(b, s, sc)
	if ds := sc.all("proxy_hide_header"); len(ds) > 0 {
		var names []string
		for _, d := range ds {
			names = append(names, d.Arg(0))
			t.done(d)
		}
		b.set("response_headers_remove", strings.Join(names, ","))
	}
	t.addHeaders(b, sc)
	t.gzip(b, sc)
	t.errorPages(b, s, l)
}

// nginxSize converts an Nginx size (1024-based k, m, g) to the label's.
func nginxSize(v string) (string, bool) {
	v = strings.ToLower(v)
	unit := ""
	switch {
	case strings.HasSuffix(v, "k"):
		unit = "KiB"
	case strings.HasSuffix(v, "m"):
		unit = "MiB"
	case strings.HasSuffix(v, "g"):
		unit = "GiB"
	}
	num := strings.TrimRight(v, "kmg")
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return "", false
	}
	if n == 0 {
		return "0", true
	}
	return strconv.FormatInt(n, 10) + unit, true
}

// nginxTime converts an Nginx time (ms, s, m, h, d; a bare number is
// seconds) to a Go duration.
func nginxTime(v string) (string, bool) {
	re := regexp.MustCompile(`^(\d+)(ms|s|m|h|d)?$`)
	m := re.FindStringSubmatch(strings.ToLower(v))
	if m == nil {
		return "", false
	}
	switch m[2] {
	case "", "s":
		return m[1] + "s", true
	case "d":
		n, _ := strconv.Atoi(m[1])
		return strconv.Itoa(n*24) + "h", true
	}
	return m[1] + m[2], true
}

func (t *translator) timeouts(b *build, sc *scope) {
	for _, m := range []struct {
		name string
		keys []string
	}{
		{"proxy_connect_timeout", []string{"connect_timeout"}},
		{"proxy_read_timeout", []string{"timeout", "upstream_idle_timeout"}},
		{"client_body_timeout", []string{"client_body_timeout"}},
		{"send_timeout", []string{"client_write_timeout"}},
	} {
		d := sc.last(m.name)
		if d == nil {
			continue
		}
		v, ok := nginxTime(d.Arg(0))
		if !ok || v == "0s" || v == "0ms" {
			t.drop(d, "not a positive time (e.g. 30s, 5m)")
			continue
		}
		for _, k := range m.keys {
			b.set(k, v)
		}
		t.done(d)
	}
}

func (t *translator) access(b *build, ds []*nginxconf.Directive) {
	if len(ds) == 0 {
		return
	}
	var allow []string
	for i, d := range ds {
		last := i == len(ds)-1
		switch {
		case d.Name == "allow" && d.Arg(0) != "all":
			allow = append(allow, d.Arg(0))
		case d.Name == "deny" && d.Arg(0) == "all" && last && len(allow) > 0:
		case d.Name == "allow" && d.Arg(0) == "all" && last && len(allow) == 0:
			t.unneeded(d, "every client is allowed when ingress.allow is not set")
			return
		default:
			for _, d := range ds {
				t.drop(d, "ingress.allow is an allow list (allow …; deny all;): denying some addresses while allowing the rest cannot be expressed")
			}
			return
		}
	}
	if ds[len(ds)-1].Name != "deny" {
		for _, d := range ds {
			t.drop(d, "an allow list without a final `deny all` allows everyone in Nginx; ingress.allow would deny the rest")
		}
		return
	}
	for _, d := range ds {
		t.done(d)
	}
	b.set("allow", strings.Join(allow, ","))
}

func (t *translator) basicAuth(b *build, sc *scope) {
	d := sc.last("auth_basic")
	f := sc.last("auth_basic_user_file")
	if d == nil || d.Arg(0) == "off" {
		if d != nil {
			t.done(d)
		}
		return
	}
	if f == nil {
		t.drop(d, "auth_basic without auth_basic_user_file")
		return
	}
	b.set("auth.basic_file", f.Arg(0))
	t.done(f)
	t.changed(d, "the realm is the service's name, not %q; mount the htpasswd file %s into the ingress (a Swarm secret) at that path; its entries must be bcrypt (htpasswd -B)", d.Arg(0), f.Arg(0))
}

func (t *translator) forwardAuth(b *build, s *server, sc *scope) {
	d := sc.last("auth_request")
	if d == nil || d.Arg(0) == "off" {
		if d != nil {
			t.done(d)
		}
		return
	}
	target := s.find(d.Arg(0))
	var pp *nginxconf.Directive
	if target != nil {
		pp = proxyPass(target)
	}
	if pp == nil {
		t.drop(d, "no location %s with a proxy_pass to take the auth service's URL from", d.Arg(0))
		return
	}
	u, ok := t.authURL(pp, target)
	if !ok {
		return
	}
	b.set("auth.forward", u)
	t.done(d)
	var headers []string
	for _, set := range sc.all("auth_request_set") {
		name, ok := strings.CutPrefix(set.Arg(1), "$upstream_http_")
		if !ok {
			t.drop(set, "only $upstream_http_<name> (a header of the auth service's answer) can be carried")
			continue
		}
		h := headerName(name)
		headers = append(headers, h)
		// A proxy_set_header that sends it under another name.
		for _, ps := range sc.all("proxy_set_header") {
			if ps.Arg(1) == set.Arg(0) {
				if !strings.EqualFold(ps.Arg(0), h) {
					t.changed(ps, "the upstream receives the auth service's header as %s (ingress.auth.forward.headers copies headers under their own names), not as %s", h, ps.Arg(0))
				} else {
					t.done(ps)
				}
			}
		}
		t.done(set)
	}
	if len(headers) > 0 {
		b.set("auth.forward.headers", strings.Join(headers, ","))
	}
}

// headerName turns x_auth_request_user into X-Auth-Request-User.
func headerName(v string) string {
	parts := strings.Split(v, "_")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "-")
}

// authURL is the URL the auth location proxies to: the proxy_pass URL,
// with the location's path when proxy_pass has no URI.
func (t *translator) authURL(pp *nginxconf.Directive, l *location) (string, bool) {
	raw := pp.Arg(0)
	if strings.Contains(raw, "$") {
		t.drop(pp, "the auth service's URL holds variables")
		return "", false
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		t.drop(pp, "not a URL")
		return "", false
	}
	hostport, uri, hasURI := strings.Cut(rest, "/")
	host, port := splitHostPort(hostport)
	if up, ok := t.upstreams[host]; ok {
		if addr := firstServer(up); addr != "" {
			host, port = splitHostPort(addr)
			t.done(up)
		}
	}
	if classifyAddr(host) == addrLoopback {
		host = sanitize(strings.TrimSuffix(l.path, "/"))
		if host == "" {
			host = "auth"
		}
		t.changed(pp, "the auth service listens on a loopback address for Nginx; the ingress reaches it as a Swarm service: %q is a guessed name, use the auth service's name", host)
	}
	u := scheme + "://" + host
	if port != 0 {
		u += ":" + strconv.Itoa(port)
	}
	if hasURI {
		u += "/" + uri
	} else {
		u += l.path
	}
	return u, true
}

func firstServer(up *nginxconf.Directive) string {
	for _, d := range up.Block {
		if d.Name == "server" {
			return d.Arg(0)
		}
	}
	return ""
}

func (t *translator) limits(b *build, sc *scope) {
	reqs := sc.all("limit_req")
	for i, d := range reqs {
		if i > 0 {
			t.drop(d, "one rate limit per route: the first limit_req is carried over")
			continue
		}
		var zone, burst string
		nodelay := false
		for _, a := range d.Args {
			switch {
			case strings.HasPrefix(a, "zone="):
				zone = a[len("zone="):]
			case strings.HasPrefix(a, "burst="):
				burst = a[len("burst="):]
			case a == "nodelay":
				nodelay = true
			}
		}
		z, ok := t.reqZones[zone]
		if !ok {
			t.drop(d, "no limit_req_zone %q", zone)
			continue
		}
		if z.key != "$binary_remote_addr" && z.key != "$remote_addr" {
			t.drop(d, "ingress.limit.rate counts per client address; the zone's key %s cannot be carried", z.key)
			continue
		}
		b.set("limit.rate", z.rate)
		if burst != "" && burst != "0" {
			b.set("limit.burst", burst)
		}
		t.done(z.d)
		var diffs []string
		if !nodelay {
			diffs = append(diffs, "the requests over the rate within burst go through at once (Nginx's nodelay) instead of being delayed")
		}
		if st := sc.last("limit_req_status"); st == nil || st.Arg(0) != "429" {
			diffs = append(diffs, "a refused request gets 429 with Retry-After (Nginx: limit_req_status, 503 by default)")
		}
		if st := sc.last("limit_req_status"); st != nil {
			t.done(st)
		}
		if len(diffs) > 0 {
			t.changed(d, "%s", strings.Join(diffs, "; "))
		} else {
			t.done(d)
		}
	}
	for i, d := range sc.all("limit_conn") {
		if i > 0 {
			t.drop(d, "one connection limit per route")
			continue
		}
		key, ok := t.connZones[d.Arg(0)]
		if !ok || key != "$binary_remote_addr" && key != "$remote_addr" {
			t.drop(d, "ingress.limit.conn counts per client address (a limit_conn_zone keyed by $binary_remote_addr)")
			continue
		}
		b.set("limit.conn", d.Arg(1))
		if st := sc.last("limit_conn_status"); st == nil || st.Arg(0) != "429" {
			t.changed(d, "counts requests in progress per address (an HTTP/2 connection may carry several) and refuses with 429 (Nginx: limit_conn_status, 503 by default)")
		} else {
			t.done(d)
			t.done(st)
		}
	}
}

// requestHeaders carries proxy_set_header.
func (t *translator) requestHeaders(b *build, s *server, sc *scope) {
	authVars := map[string]bool{}
	for _, set := range sc.all("auth_request_set") {
		authVars[set.Arg(0)] = true
	}
	var remove []string
	for _, d := range sc.all("proxy_set_header") {
		name, val := d.Arg(0), d.Arg(1)
		lname := strings.ToLower(name)
		switch {
		case authVars[val]:
			continue // carried by auth.forward.headers
		case lname == "host" && (val == "$host" || val == "$http_host"):
			t.unneeded(d, "the ingress forwards the client's Host")
		case lname == "x-forwarded-for" || lname == "x-forwarded-proto" || lname == "x-forwarded-host":
			t.unneeded(d, "%s", whyForwarded)
		case lname == "upgrade" || lname == "connection" && (strings.Contains(val, "upgrade") || val == ""):
			if val == "" {
				t.unneeded(d, "%s", whyKeepalive)
			} else {
				t.unneeded(d, "%s", whyUpgrade)
			}
		case lname == "x-request-id" && val == "$request_id":
			t.unneeded(d, "the ingress always sends X-Request-ID (kept from a trusted client, generated otherwise)")
		case val == "":
			remove = append(remove, name)
			t.done(d)
		default:
			v, bad := template(val, false, firstHost(s))
			if bad != "" {
				t.drop(d, "the variable %s is not known to the ingress (it knows $remote_addr, $scheme, $host, $request_id, $request_uri, $uri, $args)", bad)
				continue
			}
			b.set("request_headers."+name, v)
			t.done(d)
		}
	}
	if len(remove) > 0 {
		b.set("request_headers_remove", strings.Join(remove, ","))
	}
}

func firstHost(s *server) string {
	if len(s.hosts) == 0 {
		return ""
	}
	return s.hosts[0]
}

var hopByHop = map[string]bool{"connection": true, "content-length": true, "keep-alive": true, "proxy-connection": true, "te": true, "trailer": true, "transfer-encoding": true, "upgrade": true}

func (t *translator) addHeaders(b *build, sc *scope) {
	for _, d := range sc.all("add_header") {
		name, val := d.Arg(0), d.Arg(1)
		switch {
		case strings.EqualFold(name, "X-Accel-Buffering"):
			t.unneeded(d, "%s", whyStreams)
			continue
		case hopByHop[strings.ToLower(name)]:
			t.drop(d, "a header that describes the connection cannot be set by a route")
			continue
		case len(d.Args) < 2:
			t.drop(d, "add_header takes a name and a value")
			continue
		case len(nginxconf.Variables(val)) > 0:
			t.drop(d, "ingress.headers.<Name> sets a fixed value; the variables of %q cannot be carried", val)
			continue
		}
		b.set("headers."+name, val)
		if d.Arg(2) == "always" {
			t.done(d)
		} else {
			t.changed(d, "the ingress sets it on every answer, errors included (Nginx without `always`: on 200, 201, 204, 206, 301, 302, 303, 304, 307 and 308 only)")
		}
	}
}

func (t *translator) gzip(b *build, sc *scope) {
	on := sc.last("gzip")
	types := sc.all("gzip_types")
	min := sc.last("gzip_min_length")
	if on == nil || on.Arg(0) != "on" {
		if on != nil {
			t.done(on)
		}
		for _, d := range types {
			t.unneeded(d, "gzip is off")
		}
		if min != nil {
			t.unneeded(min, "gzip is off")
		}
		return
	}
	b.set("compress", "gzip")
	t.done(on)
	list := []string{"text/html"} // Nginx always compresses text/html
	star := false
	for _, d := range types {
		for _, a := range d.Args {
			if a == "*" {
				star = true
			}
			if !slices.Contains(list, a) {
				list = append(list, a)
			}
		}
	}
	switch {
	case star:
		for _, d := range types {
			t.changed(d, "compress.types has no wildcard: the ingress's default list of compressible types applies")
		}
	default:
		b.set("compress.types", strings.Join(list, ","))
		for _, d := range types {
			t.done(d)
		}
		if len(types) == 0 {
			t.changed(on, "without gzip_types Nginx compresses text/html only, and so does the translation (compress.types)")
		}
	}
	if min != nil {
		if n, err := strconv.Atoi(min.Arg(0)); err == nil {
			b.set("compress.min_size", strconv.Itoa(n))
			t.done(min)
		} else if v, ok := nginxSize(min.Arg(0)); ok {
			b.set("compress.min_size", v)
			t.done(min)
		} else {
			t.drop(min, "not a size")
		}
	}
}

// errorPages carries error_page for 502, 503 and 504.
func (t *translator) errorPages(b *build, s *server, l *location) {
	for _, d := range l.scope.all("error_page") {
		target := lastArg(d)
		var codes, other []string
		for _, a := range allButLast(d) {
			switch {
			case a == "502" || a == "503" || a == "504":
				codes = append(codes, a)
			case strings.HasPrefix(a, "="):
				other = append(other, a)
			default:
				other = append(other, a)
			}
		}
		page, why := t.pageSource(s, target)
		switch {
		case len(codes) == 0:
			t.drop(d, "error pages are for the ingress's own 502, 503 and 504 answers (ingress.error_page.<code>); the upstream's other answers are passed on as they are")
			continue
		case page == "":
			t.drop(d, "%s", why)
			continue
		}
		for _, c := range codes {
			b.set("error_page."+c, page)
		}
		if len(other) > 0 {
			t.changed(d, "only 502, 503 and 504 have pages (ingress.error_page.<code>); %s not carried", strings.Join(other, " "))
		} else {
			t.changed(d, "the page answers the ingress's own 502, 503 and 504 (upstream unreachable, blocked, maintenance, timeout); the upstream's own 5xx answers are passed on as they are. Mount %s into the ingress (a Swarm config)", page)
		}
	}
}

// pageSource finds the file or URL an error_page target names.
func (t *translator) pageSource(s *server, target string) (string, string) {
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		return target, ""
	}
	if !strings.HasPrefix(target, "/") {
		return "", fmt.Sprintf("the page %s is a named location: give a file or an http URL", target)
	}
	l := s.find(target)
	var root *nginxconf.Directive
	if l != nil {
		for _, d := range l.d.Block {
			if d.Name == "alias" {
				return d.Arg(0), ""
			}
		}
		if pp := proxyPass(l); pp != nil {
			u, ok := t.authURL(pp, l)
			if ok {
				return strings.TrimSuffix(u, l.path) + target, ""
			}
		}
		root = l.scope.last("root")
	} else {
		root = s.scope.last("root")
	}
	if root == nil {
		return "", fmt.Sprintf("no root or location tells where the page %s is", target)
	}
	return strings.TrimSuffix(root.Arg(0), "/") + target, ""
}
