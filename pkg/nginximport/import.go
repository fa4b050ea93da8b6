// Package nginximport translates an Nginx configuration (parsed by
// pkg/nginxconf) into the ingress's labels: per upstream, the
// `deploy.labels` of a Swarm service in a stack file, or an entry of the
// routes file. Every directive is accounted for: carried over into labels,
// carried over with a difference worth knowing, recognised as unnecessary
// with the ingress (it exists to work around Nginx), or not carried over,
// with its file, line and the reason. docs/import-nginx.md describes the
// mapping.
package nginximport

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/swarm-ingress/swarm-ingress/pkg/nginxconf"
)

// Options tune a translation.
type Options struct {
	// Base, when set, is the directory file names are shown relative to.
	Base string
}

// Result is a translated configuration.
type Result struct {
	Services []*Service // Swarm services to label, sorted by name
	Static   []*Service // upstreams outside Swarm: entries of the routes file, sorted by name
	Changed  []Note     // carried over with a difference
	Unneeded []Note     // recognised as unnecessary with the ingress
	Dropped  []Note     // not carried over
}

// Service is one upstream: a Swarm service to label, or a static entry of
// the routes file.
type Service struct {
	Name      string
	Why       string   // how the name was chosen
	Upstreams []string // static entries: host:port as the routes file takes them
	Routes    []*Route // sorted by name
}

// Route is one route of a service. A service with one route uses the
// top-level keys; several use ingress.routes.<name>.<key>.
type Route struct {
	Name   string
	From   string  // where it was read: "nginx.conf:12"
	Labels []Label // in output order
}

// Label is one key (without prefix) and its value.
type Label struct {
	Key, Value string
}

// Get returns the value of key, or "".
func (r *Route) Get(key string) string {
	for _, l := range r.Labels {
		if l.Key == key {
			return l.Value
		}
	}
	return ""
}

// Note is a directive that did not become a plain label.
type Note struct {
	Pos       string // file:line
	Directive string // as written
	Reason    string
}

// Partial reports whether something was not carried over.
func (r *Result) Partial() bool { return len(r.Dropped) > 0 }

// Translate translates the top-level directives of one or more files (each
// as nginxconf.Parse returns them, includes expanded). A file with an http
// block is read from it; a file without one (a conf.d snippet) is read as
// the inside of an http block.
func Translate(files [][]*nginxconf.Directive, opts Options) *Result {
	t := &translator{
		opts:       opts,
		upstreams:  map[string]*nginxconf.Directive{},
		reqZones:   map[string]reqZone{},
		connZones:  map[string]string{},
		noted:      map[*nginxconf.Directive]bool{},
		services:   map[string]*Service{},
		hostAlias:  map[string][]string{},
		httpsRedir: map[string]string{},
		localNames: map[string]string{},
		targets:    map[*nginxconf.Directive]*target{},
		claimed:    map[string]string{},
	}
	var http []httpCtx
	for _, ds := range files {
		found := false
		for _, d := range ds {
			if d.Name == "http" && d.IsBlock {
				found = true
				http = append(http, httpCtx{d.Block})
				continue
			}
			t.topLevel(d)
		}
		if !found {
			var inner []*nginxconf.Directive
			for _, d := range ds {
				if !mainOnly[d.Name] {
					inner = append(inner, d)
				}
			}
			http = append(http, httpCtx{inner})
		}
	}
	t.run(http)
	for _, a := range t.pendingAlias {
		if !t.noted[a.d] {
			t.drop(a.d, "a redirect to %s, which no server of this configuration routes: put ingress.canonical_host=%s on the route of that host, with these hosts added to its ingress.host", a.target, a.target)
		}
	}
	return t.result()
}

type httpCtx struct{ ds []*nginxconf.Directive }

// mainOnly are directives of the main context (outside http).
var mainOnly = map[string]bool{
	"user": true, "worker_processes": true, "pid": true, "events": true, "worker_rlimit_nofile": true,
	"load_module": true, "daemon": true, "master_process": true, "stream": true,
	"worker_cpu_affinity": true, "env": true, "thread_pool": true, "pcre_jit": true, "mail": true,
}

// topLevel notes a directive of the main context.
func (t *translator) topLevel(d *nginxconf.Directive) {
	switch d.Name {
	case "stream", "mail":
		t.drop(d, "TCP/UDP and mail proxying are not part of the ingress (it serves HTTP and HTTPS)")
	case "load_module":
		t.drop(d, "dynamic modules are not loaded by the ingress; their directives are listed where they are used")
	case "user", "worker_processes", "pid", "events", "worker_rlimit_nofile", "daemon", "master_process",
		"worker_cpu_affinity", "env", "thread_pool", "pcre_jit", "error_log":
		t.unneeded(d, "process settings of Nginx; the ingress is one Go process configured by INGRESS_* settings")
	}
}

// translator holds what one translation gathers.
type translator struct {
	opts      Options
	upstreams map[string]*nginxconf.Directive // upstream blocks by name
	reqZones  map[string]reqZone              // limit_req_zone by zone name
	connZones map[string]string               // limit_conn_zone: zone -> key
	noted     map[*nginxconf.Directive]bool   // directives already noted (each is noted once)
	res       Result
	services  map[string]*Service // by name, Swarm and static
	// hostAlias: canonical host -> hosts redirected to it (www servers).
	hostAlias map[string][]string
	// httpsRedir: host -> position of the plain-HTTP server that redirects it to HTTPS.
	httpsRedir   map[string]string
	localNames   map[string]string // loopback address -> the service name derived for it
	targets      map[*nginxconf.Directive]*target
	claimed      map[string]string // "hosts path" -> the location that routes it
	pendingAlias []aliasRedirect   // www servers, settled when their target is routed
	changedSeen  map[string]bool   // "pos\x00reason" of the differences noted
}

type reqZone struct {
	key, rate string
	d         *nginxconf.Directive
}

func (t *translator) pos(d *nginxconf.Directive) string {
	f := d.File
	if t.opts.Base != "" {
		if rel, err := filepath.Rel(t.opts.Base, f); err == nil {
			f = rel
		}
	}
	return fmt.Sprintf("%s:%d", f, d.Line)
}

func (t *translator) note(list *[]Note, d *nginxconf.Directive, reason string) {
	if t.noted[d] {
		return
	}
	t.noted[d] = true
	*list = append(*list, Note{Pos: t.pos(d), Directive: d.String(), Reason: reason})
}

func (t *translator) drop(d *nginxconf.Directive, format string, args ...any) {
	t.note(&t.res.Dropped, d, fmt.Sprintf(format, args...))
}

// changed notes a difference; one directive may have several (each once).
func (t *translator) changed(d *nginxconf.Directive, format string, args ...any) {
	reason := fmt.Sprintf(format, args...)
	key := t.pos(d) + "\x00" + reason
	if t.changedSeen[key] {
		return
	}
	if t.changedSeen == nil {
		t.changedSeen = map[string]bool{}
	}
	t.changedSeen[key] = true
	t.noted[d] = true
	t.res.Changed = append(t.res.Changed, Note{Pos: t.pos(d), Directive: d.String(), Reason: reason})
}

func (t *translator) unneeded(d *nginxconf.Directive, format string, args ...any) {
	t.note(&t.res.Unneeded, d, fmt.Sprintf(format, args...))
}

// done marks a directive as carried over as plain labels.
func (t *translator) done(d *nginxconf.Directive) { t.noted[d] = true }

func (t *translator) result() *Result {
	for _, s := range t.services {
		slices.SortFunc(s.Routes, func(a, b *Route) int { return strings.Compare(a.Name, b.Name) })
		if s.Upstreams != nil {
			t.res.Static = append(t.res.Static, s)
		} else {
			t.res.Services = append(t.res.Services, s)
		}
	}
	byName := func(a, b *Service) int { return strings.Compare(a.Name, b.Name) }
	slices.SortFunc(t.res.Services, byName)
	slices.SortFunc(t.res.Static, byName)
	for _, l := range []*[]Note{&t.res.Changed, &t.res.Unneeded, &t.res.Dropped} {
		slices.SortStableFunc(*l, func(a, b Note) int { return comparePos(a.Pos, b.Pos) })
	}
	return &t.res
}

// comparePos orders "file:line" by file, then line as a number.
func comparePos(a, b string) int {
	fa, la := splitPos(a)
	fb, lb := splitPos(b)
	if c := strings.Compare(fa, fb); c != 0 {
		return c
	}
	return la - lb
}

func splitPos(p string) (string, int) {
	i := strings.LastIndexByte(p, ':')
	n := 0
	fmt.Sscanf(p[i+1:], "%d", &n)
	return p[:i], n
}
