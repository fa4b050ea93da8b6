package nginximport

import (
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/swarm-ingress/swarm-ingress/pkg/nginxconf"
)

// build collects one route's labels in output order.
type build struct {
	labels []Label
}

func (b *build) set(k, v string) {
	for i, l := range b.labels {
		if l.Key == k {
			b.labels[i].Value = v
			return
		}
	}
	b.labels = append(b.labels, Label{k, v})
}

// routes turns a serving server's locations into routes.
func (t *translator) routes(s *server) {
	hosts := slices.Clone(s.hosts)
	canonical := ""
	for _, h := range s.hosts {
		if al := t.hostAlias[h]; len(al) > 0 {
			hosts = append(hosts, al...)
			canonical = h
		}
	}
	slices.Sort(hosts)
	hosts = slices.Compact(hosts)

	// Targets of auth_request and error_page are not routes of their own.
	for _, l := range s.locations {
		for _, d := range l.scope.all("auth_request") {
			if target := s.find(d.Arg(0)); target != nil {
				target.consumed = true
			}
		}
		for _, d := range l.scope.all("error_page") {
			if target := s.find(lastArg(d)); target != nil && target != l && pageLocation(target) {
				target.consumed = true
			}
		}
	}
	// The main service: that of "/", else of the first proxied location.
	for _, l := range s.locations {
		if pp := proxyPass(l); pp != nil && l.modifier != "~" && l.modifier != "~*" && l.modifier != "@" && !l.consumed {
			if svc, _ := t.target(pp, s); svc != nil && (s.main == nil || l.path == "/") {
				s.main = svc.svc
			}
		}
	}
	made := false
	for _, l := range s.locations {
		if t.locationRoute(s, l, hosts, canonical) {
			made = true
		}
	}
	if !made {
		t.drop(s.d, "the server has no location the ingress can route (server_name %s)", strings.Join(s.hosts, " "))
	}
}

// find returns the location a request for uri would use (exact first,
// then the longest prefix), or a named one for "@name".
func (s *server) find(uri string) *location {
	if name, ok := strings.CutPrefix(uri, "@"); ok {
		for _, l := range s.locations {
			if l.modifier == "@" && l.path == name {
				return l
			}
		}
		return nil
	}
	var best *location
	for _, l := range s.locations {
		switch l.modifier {
		case "=":
			if l.path == uri {
				return l
			}
		case "", "^~":
			if strings.HasPrefix(uri, l.path) && (best == nil || len(l.path) > len(best.path)) {
				best = l
			}
		}
	}
	return best
}

// pageLocation reports whether a location only serves a page: exact,
// named or internal.
func pageLocation(l *location) bool {
	if l.modifier == "=" || l.modifier == "@" {
		return true
	}
	return slices.ContainsFunc(l.d.Block, func(d *nginxconf.Directive) bool { return d.Name == "internal" })
}

func proxyPass(l *location) *nginxconf.Directive {
	for _, d := range l.d.Block {
		if d.Name == "proxy_pass" || d.Name == "grpc_pass" {
			return d
		}
	}
	return nil
}

// locationRoute makes the route of one location; false when it makes none.
func (t *translator) locationRoute(s *server, l *location, hosts []string, canonical string) bool {
	switch {
	case l.modifier == "~" || l.modifier == "~*":
		t.drop(l.d, "a regex location: routes match path prefixes on segment boundaries; give the paths it serves as prefix routes")
		t.dropAll(l.d.Block, "")
		return false
	case l.modifier == "@" && !l.consumed:
		t.drop(l.d, "a named location is reached only by try_files or error_page, which are not carried over")
		t.dropAll(l.d.Block, "")
		return false
	case l.consumed:
		t.consumed(l)
		return false
	}

	var pp, ret *nginxconf.Directive
	var rewrites []*nginxconf.Directive
	var files []*nginxconf.Directive
	nested := false
	for _, d := range l.d.Block {
		switch d.Name {
		case "proxy_pass", "grpc_pass":
			pp = d
		case "return":
			ret = d
		case "rewrite":
			rewrites = append(rewrites, d)
		case "location":
			nested = true
		case "root", "alias", "try_files", "index", "autoindex":
			files = append(files, d)
		case "if":
			t.drop(d, "if: conditions are not supported")
			t.dropAll(d.Block, "")
		default:
			t.level(d)
		}
	}
	maintenance := ret != nil && ret.Arg(0) == "503" && len(ret.Args) == 1
	if pp == nil && ret != nil && !maintenance && !redirectCodes[ret.Arg(0)] {
		t.drop(ret, "ingress.return answers redirects only (301, 302, 303, 307, 308 with a URL); other answers come from the upstream")
		t.drop(l.d, "the location answers by itself without an upstream")
		t.dropAll(l.d.Block, "")
		return false
	}
	if pp == nil && ret == nil && len(rewrites) == 0 {
		if nested && len(files) == 0 {
			t.done(l.d)
			return false
		}
		t.drop(l.d, "%s", whyFiles)
		for _, d := range files {
			t.done(d)
		}
		return false
	}
	for _, d := range files {
		t.drop(d, "%s", whyFiles)
	}

	path, ok := t.routePath(l)
	if !ok {
		return false
	}
	if pp != nil && !slices.ContainsFunc(l.scope.all("proxy_set_header"), func(d *nginxconf.Directive) bool { return strings.EqualFold(d.Arg(0), "Host") }) {
		t.changed(pp, "without proxy_set_header Host, Nginx sends the upstream's own name and port as Host ($proxy_host); the ingress forwards the client's Host (an application that builds URLs from Host now sees the public name)")
	}
	var svc *Service
	var tg *target
	if pp != nil {
		var bad bool
		tg, bad = t.target(pp, s)
		if bad {
			return false
		}
		svc = tg.svc
	} else {
		svc = s.main
		if svc == nil {
			svc = t.hostService(s)
		}
	}
	b := &build{}
	b.set("host", strings.Join(hosts, ","))
	if path != "/" {
		b.set("path", path)
	}
	if tg != nil {
		if tg.port != 80 && tg.port != 0 && svc.Upstreams == nil {
			b.set("port", strconv.Itoa(tg.port))
		}
		if tg.scheme != "http" {
			b.set("scheme", tg.scheme)
		}
		t.proxyURI(b, l, pp, tg, rewrites)
	} else if pp == nil && svc.Upstreams == nil && s.mainPort() != 0 && s.mainPort() != 80 {
		b.set("port", strconv.Itoa(s.mainPort()))
	}
	t.tls(b, s)
	if canonical != "" {
		b.set("canonical_host", canonical)
		for _, a := range t.pendingAlias {
			if a.target == canonical {
				scheme := "http"
				if s.ssl {
					scheme = "https"
				}
				if a.code == 301 && (a.scheme == scheme || a.scheme == "$scheme") {
					t.done(a.d)
				} else {
					t.changed(a.d, "ingress.canonical_host answers 301 to the route's scheme (Nginx: %d to %s)", a.code, a.scheme)
				}
			}
		}
	}
	switch {
	case maintenance:
		b.set("maintenance", "true")
		t.changed(ret, "ingress.maintenance=true answers 503 with Retry-After and the route's 503 page (ingress.error_page.503)")
	case ret != nil:
		t.ret(b, ret)
	}
	t.rewrites(b, append(s.rewritesFor(l), rewrites...))
	t.features(b, s, l)
	t.addRoute(svc, &Route{From: t.pos(l.d), Labels: b.labels}, s, l)
	return true
}

// consumed notes the directives of an auth_request or error_page target.
func (t *translator) consumed(l *location) {
	t.done(l.d)
	for _, d := range l.d.Block {
		switch d.Name {
		case "proxy_pass", "root", "alias", "rewrite", "return":
			t.done(d)
		case "proxy_set_header":
			t.unneeded(d, "the forward-auth sub-request carries the client's headers and the original method and URI in X-Forwarded-Method and X-Forwarded-Uri")
		default:
			t.level(d)
		}
	}
	for _, d := range l.scope.all("proxy_set_header") {
		if d.File == l.d.File && d.Line > l.d.Line {
			continue
		}
		// inherited header edits do not reach the auth sub-request: nothing to note here
	}
}

// rewritesFor returns the server-level rewrites that apply to location l:
// Nginx applies them before choosing a location; one whose regex starts
// with a literal path (^/feed) goes to the location that path reaches,
// any other to every location.
func (s *server) rewritesFor(l *location) []*nginxconf.Directive {
	var out []*nginxconf.Directive
	for _, d := range s.d.Block {
		if d.Name != "rewrite" {
			continue
		}
		lit := literalPrefix(d.Arg(0))
		if lit == "" || s.find(lit) == l {
			out = append(out, d)
		}
	}
	return out
}

// literalPrefix is the literal path a regex starting with ^/ begins with.
func literalPrefix(re string) string {
	rest, ok := strings.CutPrefix(re, "^/")
	if !ok {
		return ""
	}
	end := strings.IndexAny(rest, `\.+*?()|[]{}^$`)
	if end < 0 {
		end = len(rest)
	}
	return "/" + rest[:end]
}

func (s *server) mainPort() int {
	if s.main == nil || len(s.main.Routes) == 0 {
		return 0
	}
	p, _ := strconv.Atoi(s.main.Routes[0].Get("port"))
	return p
}

var pathOK = regexp.MustCompile(`^/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$`)

// routePath converts a location's path to a route path.
func (t *translator) routePath(l *location) (string, bool) {
	p := l.path
	if !pathOK.MatchString(p) || strings.Contains(p, "//") || strings.Contains(p, "/./") || strings.Contains(p, "..") {
		t.drop(l.d, "the path %q cannot be a route path (letters, digits and -._~!$&'()*+,;=:@ between slashes)", p)
		t.dropAll(l.d.Block, "")
		return "", false
	}
	if l.modifier == "=" && p != "/" {
		t.changed(l.d, "an exact location becomes a prefix route: it also serves the paths below %s", p)
	} else if l.modifier == "=" {
		t.changed(l.d, "an exact location of / becomes the route of every path of the host")
	}
	if p != "/" {
		p = strings.TrimSuffix(p, "/")
	}
	if l.modifier == "" && !strings.HasSuffix(l.path, "/") && l.path != "/" {
		// Nginx's /api also matches /apix; the ingress's only /api and /api/...
		t.done(l.d)
	}
	t.done(l.d)
	return p, true
}

// tls sets tls and redirect from how the server listens.
func (t *translator) tls(b *build, s *server) {
	if !s.ssl {
		b.set("tls", "off")
		return
	}
	redirected := s.selfRedir
	for _, h := range s.hosts {
		if _, ok := t.httpsRedir[h]; ok {
			redirected = true
		}
	}
	if s.plain && !redirected {
		b.set("redirect", "false")
	}
}

// agreedVars are the variables the ingress's templates know (docs/labels.md).
var agreedVars = map[string]bool{
	"remote_addr": true, "scheme": true, "host": true, "request_id": true, "request_uri": true, "uri": true, "args": true,
}

// template checks a value's variables: captures ($1…$9) when captures,
// the agreed ones, and $http_host / $server_name rewritten. It returns the
// value to emit, or the first variable it cannot carry.
func template(v string, captures bool, serverName string) (string, string) {
	v = strings.ReplaceAll(v, "${", "$")
	v = strings.ReplaceAll(v, "$http_host", "$host")
	if serverName != "" {
		v = strings.ReplaceAll(v, "$server_name", serverName)
	}
	for _, name := range nginxconf.Variables(v) {
		if n, err := strconv.Atoi(name); err == nil && captures && n >= 0 && n <= 9 {
			continue
		}
		if !agreedVars[name] {
			return "", "$" + name
		}
	}
	// ${x} was written $x: a name followed by a letter needs the braces back.
	return v, ""
}

var redirectCodes = map[string]bool{"301": true, "302": true, "303": true, "307": true, "308": true}

func (t *translator) ret(b *build, d *nginxconf.Directive) {
	if len(d.Args) != 2 || !redirectCodes[d.Arg(0)] {
		t.drop(d, "ingress.return answers redirects only (301, 302, 303, 307, 308 with a URL); other answers come from the upstream")
		return
	}
	v, bad := template(d.Arg(1), false, "")
	if bad != "" {
		t.drop(d, "the variable %s is not known to the ingress (it knows $remote_addr, $scheme, $host, $request_id, $request_uri, $uri, $args)", bad)
		return
	}
	b.set("return", d.Arg(0)+" "+v)
	t.done(d)
}

func (t *translator) rewrites(b *build, ds []*nginxconf.Directive) {
	var vals []string
	for _, d := range ds {
		if len(d.Args) < 2 || len(d.Args) > 3 {
			t.drop(d, "rewrite takes a regex, a replacement and an optional flag")
			continue
		}
		if _, err := regexp.Compile(d.Arg(0)); err != nil {
			t.drop(d, "the regex is not RE2 syntax (no look-around or back-references): %v", err)
			continue
		}
		repl, bad := template(d.Arg(1), true, "")
		if bad != "" {
			t.drop(d, "the variable %s is not known to the ingress", bad)
			continue
		}
		flag := d.Arg(2)
		absolute := strings.HasPrefix(repl, "http://") || strings.HasPrefix(repl, "https://") || strings.HasPrefix(repl, "$scheme://")
		if flag == "" && absolute {
			flag = "redirect" // Nginx redirects (302) to an absolute replacement
		}
		if flag != "" && flag != "permanent" && flag != "redirect" && flag != "last" && flag != "break" {
			t.drop(d, "unknown rewrite flag %q", flag)
			continue
		}
		if d.Arg(2) == "last" {
			t.changed(d, "last: the ingress rewrites the path sent to the upstream after the route is chosen; it does not search the locations again")
		} else {
			t.done(d)
		}
		v := d.Arg(0) + " " + repl
		if flag != "" {
			v += " " + flag
		}
		vals = append(vals, v)
	}
	switch len(vals) {
	case 0:
	case 1:
		b.set("rewrite", vals[0])
	default:
		for i, v := range vals {
			b.set("rewrite."+strconv.Itoa(i+1), v)
		}
	}
}

// proxyURI carries the URI part of proxy_pass: replacing the location's
// prefix with "/" is strip_prefix, with another path a rewrite.
func (t *translator) proxyURI(b *build, l *location, pp *nginxconf.Directive, tg *target, rewrites []*nginxconf.Directive) {
	if !tg.hasURI {
		return
	}
	loc := l.path
	switch {
	case tg.uri == loc:
	case len(rewrites) > 0:
		t.changed(pp, "the URI part of proxy_pass (%s) is dropped: the location's rewrites decide the upstream path", tg.uri)
	case l.modifier == "=":
		if tg.uri != loc {
			b.set("rewrite", "^"+regexp.QuoteMeta(loc)+"$ "+tg.uri)
		}
	case tg.uri == "/" && strings.HasSuffix(loc, "/") || tg.uri == "/" && loc == "/":
		if loc != "/" {
			b.set("strip_prefix", "true")
		}
	case tg.uri == "/":
		b.set("strip_prefix", "true")
		t.changed(pp, "strip_prefix removes %s and keeps the slash after it (/x), where Nginx, replacing %s by /, would send //x", loc, loc)
	default:
		b.set("rewrite", "^"+regexp.QuoteMeta(loc)+"(.*)$ "+tg.uri+"$1")
	}
}

// sanitize makes a Swarm service or route name from text.
func sanitize(s string) string {
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(s) {
		switch {
		case 'a' <= c && c <= 'z' || '0' <= c && c <= '9':
			b.WriteRune(c)
			dash = false
		case b.Len() > 0 && !dash:
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}
