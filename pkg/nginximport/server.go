package nginximport

import (
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/swarm-ingress/swarm-ingress/pkg/nginxconf"
)

// server is one server block being translated.
type server struct {
	d         *nginxconf.Directive
	hosts     []string
	ssl       bool // listens with TLS
	plain     bool // listens without TLS
	selfRedir bool // redirects its own plain-HTTP requests to HTTPS (an if on $scheme)
	scope     *scope
	locations []*location
	main      *Service // the service of its "/" location, or of its first proxied location
}

// location is one location block (nested ones flattened, each with its own scope).
type location struct {
	d        *nginxconf.Directive
	modifier string // "", "=", "^~", "~", "~*", "@"
	path     string // the prefix or exact path as written; a regex or name otherwise
	scope    *scope
	consumed bool // an auth_request or error_page target: not a route of its own
}

func (t *translator) run(https []httpCtx) {
	// Definitions first: upstream blocks and zones may follow their use.
	for _, h := range https {
		for _, d := range h.ds {
			t.definition(d)
		}
	}
	var servers []*server
	for _, h := range https {
		hs := t.newScope(nil, h.ds, "http")
		for _, d := range h.ds {
			if d.Name == "server" && d.IsBlock {
				if s := t.server(d, hs); s != nil {
					servers = append(servers, s)
				}
			}
		}
	}
	for _, s := range servers {
		t.routes(s)
	}
}

// definition reads the http-level blocks other directives refer to.
func (t *translator) definition(d *nginxconf.Directive) {
	switch d.Name {
	case "upstream":
		t.upstreams[d.Arg(0)] = d
		t.done(d)
	case "limit_req_zone":
		z := reqZone{key: d.Arg(0), d: d}
		name := ""
		for _, a := range argsFrom(d, 1) {
			if v, ok := strings.CutPrefix(a, "zone="); ok {
				name, _, _ = strings.Cut(v, ":")
			}
			if v, ok := strings.CutPrefix(a, "rate="); ok {
				z.rate = v
			}
		}
		t.reqZones[name] = z
		t.done(d)
	case "limit_conn_zone":
		for _, a := range argsFrom(d, 1) {
			if v, ok := strings.CutPrefix(a, "zone="); ok {
				name, _, _ := strings.Cut(v, ":")
				t.connZones[name] = d.Arg(0)
			}
		}
		t.done(d)
	case "map":
		if d.Arg(0) == "$http_upgrade" {
			t.unneeded(d, "the usual map for WebSocket Connection headers: the ingress passes Upgrade requests through by itself")
		} else {
			t.drop(d, "map: variables computed from the request are not supported; express the cases as separate routes")
		}
	}
}

// server reads a server block: a redirect-only server is recorded (HTTPS
// or canonical-host redirect) and nil returned; a serving one is returned.
func (t *translator) server(d *nginxconf.Directive, parent *scope) *server {
	s := &server{d: d}
	var body []*nginxconf.Directive
	for _, c := range d.Block {
		switch c.Name {
		case "listen":
			t.listen(s, c)
		case "server_name":
			t.serverName(s, c)
		case "ssl":
			s.ssl = s.ssl || c.Arg(0) == "on"
			t.unneeded(c, "TLS is on for every route with tls=auto")
		default:
			body = append(body, c)
		}
	}
	if len(s.hosts) == 0 {
		t.drop(d, "a server without a usable server_name (a catch-all): the ingress routes by host name; requests for hosts without a route get 404 (or the INGRESS_NOT_FOUND_PAGE page)")
		t.dropAll(d.Block, "inside a server that is not carried over")
		return nil
	}
	if !s.ssl && !s.plain {
		s.plain = true // no listen: Nginx listens on 80
	}
	if t.redirectServer(s, body) {
		return nil
	}
	s.scope = t.newScope(parent, body, "server")
	for _, c := range body {
		switch c.Name {
		case "location":
			t.location(s, c, s.scope)
		case "if":
			t.serverIf(s, c)
		case "return":
			t.drop(c, "a server-level return next to locations: put it in a location (ingress.return is per route)")
		case "rewrite":
			// applied to each route in routes()
		default:
			t.level(c)
		}
	}
	return s
}

func (t *translator) listen(s *server, d *nginxconf.Directive) {
	addr := d.Arg(0)
	if strings.HasPrefix(addr, "unix:") {
		t.drop(d, "the ingress listens on TCP only (INGRESS_HTTP_ADDR, INGRESS_HTTPS_ADDR)")
		return
	}
	port := addr
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		port = addr[i+1:]
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		n = 80
	}
	ssl := slices.Contains(argsFrom(d, 1), "ssl") || slices.Contains(argsFrom(d, 1), "quic")
	if ssl {
		s.ssl = true
	} else {
		s.plain = true
	}
	switch {
	case ssl && n != 443 || !ssl && n != 80:
		t.changed(d, "the ingress serves HTTP on INGRESS_HTTP_ADDR (:80) and HTTPS on INGRESS_HTTPS_ADDR (:443) for every route; port %d is not kept", n)
	case slices.Contains(argsFrom(d, 1), "default_server"):
		t.changed(d, "there is no default server: a host without a route gets 404 (or the INGRESS_NOT_FOUND_PAGE page)")
	default:
		t.unneeded(d, "the ingress listens on :80 and :443; tls=auto (the default) serves HTTPS with an ACME certificate, tls=off plain HTTP only")
	}
}

func (t *translator) serverName(s *server, d *nginxconf.Directive) {
	var bad []string
	for _, h := range d.Args {
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		switch {
		case h == "_" || h == "" || h == "localhost":
			bad = append(bad, h)
		case strings.HasPrefix(h, "~") || strings.HasSuffix(h, ".*") || strings.ContainsAny(h, "$"):
			bad = append(bad, h)
		case strings.HasPrefix(h, ".") && hostName.MatchString(h[1:]):
			s.hosts = append(s.hosts, h[1:], "*"+h)
		case hostName.MatchString(h):
			s.hosts = append(s.hosts, h)
		default:
			bad = append(bad, h)
		}
	}
	if len(bad) > 0 {
		t.changed(d, "names the ingress cannot route by are left out (%s): it takes exact names and *.domain wildcards", strings.Join(bad, " "))
	} else {
		t.done(d)
	}
}

var hostName = regexp.MustCompile(`^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)

// redirectServer recognises a server whose only job is a redirect of every
// request: to HTTPS on the same host, or to another host (www -> apex).
func (t *translator) redirectServer(s *server, body []*nginxconf.Directive) bool {
	var ret *nginxconf.Directive
	for _, c := range body {
		switch {
		case c.Name == "return" || c.Name == "rewrite":
			if ret != nil {
				return false
			}
			ret = c
		case c.Name == "location" && c.Arg(0) == "/" && len(c.Args) == 1 && len(c.Block) == 1 &&
			(c.Block[0].Name == "return" || c.Block[0].Name == "rewrite"):
			if ret != nil {
				return false
			}
			ret = c.Block[0]
			t.done(c)
		case serverOnly[c.Name] != "" || strings.HasPrefix(c.Name, "ssl_") || c.Name == "access_log" || c.Name == "error_log":
		default:
			return false
		}
	}
	if ret == nil {
		return false
	}
	code, scheme, host, ok := hostRedirect(ret)
	if !ok {
		return false
	}
	for _, c := range body {
		if c != ret && c.Name != "location" {
			t.level(c)
		}
	}
	own := host == "$host" || host == "$server_name" || host == "$http_host" || slices.Contains(s.hosts, host)
	switch {
	case own && scheme == "https":
		for _, h := range s.hosts {
			t.httpsRedir[h] = t.pos(ret)
		}
		t.unneeded(ret, "the redirect of plain HTTP to HTTPS is the ingress's default for every tls=auto route (redirect=true), answered with 308 (keeps the method) instead of %d", code)
	case !own:
		t.hostAlias[host] = append(t.hostAlias[host], s.hosts...)
		t.pendingAlias = append(t.pendingAlias, aliasRedirect{d: ret, target: host, code: code, scheme: scheme})
	default:
		t.drop(ret, "a redirect to http:// on the same host: the ingress redirects only from HTTP to HTTPS")
	}
	return true
}

type aliasRedirect struct {
	d      *nginxconf.Directive
	target string
	code   int
	scheme string
}

// hostRedirect reads `return 30x scheme://host$request_uri` (or a rewrite
// of ^ or ^(.*)$ to scheme://host$1 / $request_uri with permanent or
// redirect): a redirect that keeps path and query.
func hostRedirect(d *nginxconf.Directive) (code int, scheme, host string, ok bool) {
	var target string
	switch d.Name {
	case "return":
		c, err := strconv.Atoi(d.Arg(0))
		if err != nil || len(d.Args) != 2 {
			return 0, "", "", false
		}
		code, target = c, d.Arg(1)
	case "rewrite":
		if len(d.Args) != 3 {
			return 0, "", "", false
		}
		switch d.Arg(2) {
		case "permanent":
			code = 301
		case "redirect":
			code = 302
		default:
			return 0, "", "", false
		}
		target = d.Arg(1)
		if d.Arg(0) == "^(.*)$" || d.Arg(0) == "^(.*)" {
			target = strings.Replace(target, "$1", "$request_uri", 1)
		} else if d.Arg(0) != "^" {
			return 0, "", "", false
		}
	default:
		return 0, "", "", false
	}
	if code != 301 && code != 302 && code != 307 && code != 308 {
		return 0, "", "", false
	}
	scheme, rest, found := strings.Cut(target, "://")
	if !found || (scheme != "http" && scheme != "https" && scheme != "$scheme") {
		return 0, "", "", false
	}
	host, ok = strings.CutSuffix(rest, "$request_uri")
	if !ok || host == "" || strings.Contains(host, "/") {
		return 0, "", "", false
	}
	return code, scheme, strings.ToLower(host), true
}

// serverIf recognises `if ($scheme = http) { return 301 https://$host$request_uri; }`.
func (t *translator) serverIf(s *server, d *nginxconf.Directive) {
	cond := strings.Join(d.Args, " ")
	cond = strings.NewReplacer(`"`, "", "'", "").Replace(cond)
	if (cond == "($scheme = http)" || cond == "($scheme != https)") && len(d.Block) == 1 {
		if _, scheme, host, ok := hostRedirect(d.Block[0]); ok && scheme == "https" && (host == "$host" || host == "$server_name") {
			s.selfRedir = true
			t.done(d.Block[0])
			t.unneeded(d, "the redirect of plain HTTP to HTTPS is the ingress's default for every tls=auto route (redirect=true, 308)")
			return
		}
	}
	t.drop(d, "if: conditions are not supported (for a maintenance switch use ingress.maintenance=true; for per-path behaviour, routes)")
	t.dropAll(d.Block, "inside an if that is not carried over")
}

// dropAll notes every directive of a block that is not carried over with
// the block.
func (t *translator) dropAll(ds []*nginxconf.Directive, reason string) {
	nginxconf.Walk(ds, func(d *nginxconf.Directive, _ []*nginxconf.Directive) bool {
		t.noted[d] = true
		return true
	})
	_ = reason
}

// location reads a location block and its nested locations.
func (t *translator) location(s *server, d *nginxconf.Directive, parent *scope) {
	l := &location{d: d}
	switch len(d.Args) {
	case 1:
		l.path = d.Arg(0)
		if strings.HasPrefix(l.path, "@") {
			l.modifier, l.path = "@", l.path[1:]
		}
	case 2:
		l.modifier, l.path = d.Arg(0), d.Arg(1)
	default:
		t.drop(d, "a location takes an optional modifier and one path")
		t.dropAll(d.Block, "")
		return
	}
	var own []*nginxconf.Directive
	for _, c := range d.Block {
		if c.Name != "location" {
			own = append(own, c)
		}
	}
	l.scope = t.newScope(parent, own, "location")
	s.locations = append(s.locations, l)
	for _, c := range d.Block {
		if c.Name == "location" && c.IsBlock {
			t.location(s, c, l.scope)
		}
	}
}
