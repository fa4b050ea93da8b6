package proxy

import (
	"cmp"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// Explain answers "what would the ingress do with this URL?" from a route
// table, without a request: which route matches and why (host, path,
// priority), the steps that apply to it in the order the handler takes
// them, and the upstreams in rotation; for a URL no route matches, the
// nearest routes and why each does not. `ingress explain` and the admin's
// GET /api/match print it.

// Explanation is the answer for one URL.
type Explanation struct {
	URL     string `json:"url"`
	Scheme  string `json:"scheme"`
	Host    string `json:"host"`
	Path    string `json:"path"` // canonical, as matched and forwarded (docs/labels.md "Paths")
	Outcome string `json:"outcome"`

	Match     *MatchView    `json:"match,omitempty"`
	Steps     []StepView    `json:"steps,omitempty"`
	Upstreams []string      `json:"upstreams,omitempty"`
	Split     []SplitMember `json:"split,omitempty"`
	Nearest   []Miss        `json:"nearest,omitempty"`
}

// MatchView is the route that serves the URL and why it wins.
type MatchView struct {
	Route    string   `json:"route"` // service/route
	Hosts    []string `json:"hosts"`
	Path     string   `json:"path"`
	Priority int      `json:"priority"`
	Why      []string `json:"why"`
}

// StepView is one stage of the walk and what it does to this request.
type StepView struct {
	Stage  string `json:"stage"`
	File   string `json:"file"` // where in pkg/proxy it acts
	Effect string `json:"effect"`
	Final  bool   `json:"final,omitempty"` // it answers the request itself
}

// SplitMember is one route of a weighted split.
type SplitMember struct {
	Route  string `json:"route"`
	Weight int    `json:"weight"`
}

// Miss is a route that does not match, and why.
type Miss struct {
	Route string   `json:"route"`
	Hosts []string `json:"hosts"`
	Path  string   `json:"path"`
	Why   string   `json:"why"`
}

// explainReq is what the stages look at.
type explainReq struct {
	scheme, host, path, query string
	slash                     bool // the path holds an encoded slash
}

// Stage is one step of a matched request's walk. Applies reports what the
// step does to the request on route r ("" when it does nothing) and
// whether it answers the request itself (the walk ends there).
type Stage struct {
	Name    string
	File    string
	Applies func(r *route.Route, q explainReq) (effect string, final bool)
}

// Stages lists the steps of the walk in the order the handler takes them
// (handler.go: match, admit, forward; access.go has the order of the access
// steps). A feature that adds a step adds it here, at its place.
var Stages = []Stage{
	{"blocked", "match.go", func(r *route.Route, _ explainReq) (string, bool) {
		if r.Blocked == "" {
			return "", false
		}
		return "503: the route's labels are invalid (" + r.Blocked + ")", true
	}},
	{"encoded slashes", "match.go", func(r *route.Route, q explainReq) (string, bool) {
		switch {
		case !q.slash:
			return "", false
		case r.AllowEncodedSlashes:
			return "the path's %2F/%5C are kept escaped (allow_encoded_slashes)", false
		}
		return "400: the path holds %2F or %5C and the route does not set allow_encoded_slashes", true
	}},
	{"rewrite", "rewrite.go", explainRewriteStage}, // canonical_host, rewrite, return
	{"https redirect", "policy.go", func(r *route.Route, q explainReq) (string, bool) {
		if !r.TLSAuto() || !r.Redirect {
			return "", false
		}
		if q.scheme == "https" {
			return "", false
		}
		u := "https://" + q.host + q.path
		if q.query != "" {
			u += "?" + q.query
		}
		return "308 to " + u, true
	}},
	{"allow", "policy.go", func(r *route.Route, _ explainReq) (string, bool) {
		if len(r.Allow) == 0 {
			return "", false
		}
		nets := make([]string, len(r.Allow))
		for i, p := range r.Allow {
			nets[i] = p.String()
		}
		return "403 unless the client address is in " + strings.Join(nets, ", "), false
	}},
	{"limit.conn", "limit.go", func(r *route.Route, _ explainReq) (string, bool) {
		if r.Limit.Conn <= 0 {
			return "", false
		}
		return fmt.Sprintf("429 beyond %d requests in progress per client address", r.Limit.Conn), false
	}},
	{"limit.rate", "limit.go", func(r *route.Route, _ explainReq) (string, bool) {
		if r.Limit.Rate.N <= 0 {
			return "", false
		}
		return fmt.Sprintf("429 with Retry-After beyond %s per client address (burst %d)", r.Limit.Rate, r.Limit.Burst), false
	}},
	{"auth.basic", "auth.go", func(r *route.Route, _ explainReq) (string, bool) {
		if len(r.BasicAuth) == 0 {
			return "", false
		}
		users := make([]string, len(r.BasicAuth))
		for i, u := range r.BasicAuth {
			users[i] = u.User
		}
		e := "401 unless Basic credentials of " + strings.Join(users, ", ")
		if r.BasicAuthFile != "" {
			e += " or of a user of " + r.BasicAuthFile + " (one check: either list passes)"
		}
		return e, false
	}},
	{"auth.basic_file", "authfile.go", func(r *route.Route, _ explainReq) (string, bool) {
		if r.BasicAuthFile == "" || len(r.BasicAuth) > 0 { // with auth.basic: one check, shown there
			return "", false
		}
		return "401 unless Basic credentials of a user of " + r.BasicAuthFile + " (503 while the file is unusable)", false
	}},
	{"auth.forward", "forwardauth.go", func(r *route.Route, _ explainReq) (string, bool) {
		if r.ForwardAuth.URL == "" {
			return "", false
		}
		e := "asks " + r.ForwardAuth.URL + "; a non-2xx answer is returned as it is"
		if len(r.ForwardAuth.Headers) > 0 {
			e += "; copies " + strings.Join(r.ForwardAuth.Headers, ", ") + " to the upstream request"
		}
		return e, false
	}},
	{"maintenance", "errorpage.go", func(r *route.Route, _ explainReq) (string, bool) {
		if !r.Maintenance {
			return "", false
		}
		return "503 with Retry-After (maintenance)", true
	}},
	{"max_body", "policy.go", func(r *route.Route, _ explainReq) (string, bool) {
		if r.MaxBody <= 0 {
			return "", false
		}
		return fmt.Sprintf("413 for a body over %d bytes", r.MaxBody), false
	}},
	{"forward", "outbound.go", func(r *route.Route, q explainReq) (string, bool) {
		p := upstreamTarget(r, q) // strip_prefix or an internal rewrite (rewrite_explain.go)
		b := r.Bounds()
		scheme := cmp.Or(r.Scheme, route.SchemeHTTP)
		return fmt.Sprintf("%s %s to port %d (connect %s, headers %s)", strings.ToUpper(scheme), p, r.Port, b.Connect, b.Header), false
	}},
	{"request headers", "reqheaders.go", explainRequestHeaders},
	{"response headers", "stream.go", func(r *route.Route, _ explainReq) (string, bool) {
		if len(r.Headers) == 0 {
			return "", false
		}
		names := make([]string, len(r.Headers))
		for i, h := range r.Headers {
			names[i] = h.Name
		}
		return "sets " + strings.Join(names, ", "), false
	}},
	{"response edits", "compress.go", explainResponseEdits}, // response_headers_remove, compress
	{"stream", "stream.go", func(r *route.Route, _ explainReq) (string, bool) {
		if !r.Stream {
			return "", false
		}
		return "every write is flushed (stream=true)", false
	}},
	{"error pages", "errors.go", func(r *route.Route, _ explainReq) (string, bool) {
		if len(r.ErrorPages) == 0 {
			return "", false
		}
		var codes []string
		for _, p := range r.ErrorPages {
			codes = append(codes, strconv.Itoa(p.Code)+" from "+p.Source)
		}
		return "pages for the ingress's own " + strings.Join(codes, ", "), false
	}},
}

// Explain explains how the table serves rawURL ("http://host/path?q"; a
// URL without scheme is taken as http).
func Explain(t *route.Table, rawURL string) (*Explanation, error) {
	if !strings.Contains(rawURL, "://") {
		rawURL = "http://" + rawURL
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("the URL's scheme must be http or https, not %q", u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("the URL %q has no host", rawURL)
	}
	e := &Explanation{URL: rawURL, Scheme: u.Scheme, Host: route.NormalizeHost(u.Host)}
	raw := requestPath(u)
	p, slash, ok := canonicalPath(raw)
	e.Path = p
	if !ok {
		e.Path = raw
		e.Outcome = "400: the path cannot be made canonical (docs/labels.md \"Paths\")"
		return e, nil
	}
	q := explainReq{scheme: u.Scheme, host: e.Host, path: p, query: u.RawQuery, slash: slash}
	r, split := t.Lookup(e.Host, p)
	if r == nil {
		e.Outcome = "404: no route"
		if t == nil || t.Partial {
			e.Outcome = "503 with Retry-After: the route table is not complete yet"
		}
		e.Nearest = nearest(t, e.Host, p)
		return e, nil
	}
	e.Match = &MatchView{Route: r.ID(), Hosts: r.Hosts, Path: r.Path, Priority: r.Priority, Why: why(t, r, e.Host, p)}
	e.Outcome = "forwarded to " + r.ID()
	for _, st := range Stages {
		effect, final := st.Applies(r, q)
		if effect == "" {
			continue
		}
		e.Steps = append(e.Steps, StepView{Stage: st.Name, File: st.File, Effect: effect, Final: final})
		if final {
			e.Outcome = effect
			break
		}
	}
	if split != nil {
		for i, m := range split.Routes {
			e.Split = append(e.Split, SplitMember{Route: m.ID(), Weight: split.Weights[i]})
		}
	}
	for _, a := range r.Upstreams {
		e.Upstreams = append(e.Upstreams, a.String())
	}
	if len(e.Upstreams) == 0 && !slices.ContainsFunc(e.Steps, func(s StepView) bool { return s.Final }) {
		e.Outcome += " (no upstream in rotation: 502 until a task runs)"
	}
	return e, nil
}

// hostMatch says how a route's host list covers host: "exact", "wildcard"
// (with the wildcard) or "".
func hostMatch(r *route.Route, host string) (kind, which string) {
	for _, h := range r.Hosts {
		if h == host {
			return "exact", h
		}
	}
	for _, h := range r.Hosts {
		if suffix, ok := strings.CutPrefix(h, "*."); ok {
			if _, rest, ok := strings.Cut(host, "."); ok && rest == suffix {
				return "wildcard", h
			}
		}
	}
	return "", ""
}

// why lists the reasons r serves host and path.
func why(t *route.Table, r *route.Route, host, path string) []string {
	kind, h := hostMatch(r, host)
	var out []string
	if kind == "exact" {
		out = append(out, "host "+host+" is one of the route's hosts")
	} else {
		out = append(out, "host "+host+" matches the wildcard "+h+" (no route of the exact host serves this path)")
	}
	if r.Path == "/" {
		out = append(out, "path / covers every path")
	} else {
		out = append(out, "path "+r.Path+" is a prefix of "+path+" on a segment boundary")
	}
	for _, o := range t.Routes {
		if o == r {
			continue
		}
		ok, _ := hostMatch(o, host)
		if ok == "" || !route.PathHasPrefix(path, o.Path) {
			continue
		}
		switch {
		case strings.EqualFold(o.Path, r.Path) && ok == kind:
			out = append(out, fmt.Sprintf("%s claims the same host and path and loses (%s)", o.ID(), lossReason(r, o)))
		case ok == kind && len(o.Path) < len(r.Path):
			out = append(out, fmt.Sprintf("%s (path %s) also matches; the longer prefix wins", o.ID(), o.Path))
		case ok == "wildcard" && kind == "exact":
			out = append(out, fmt.Sprintf("%s (%s) also matches; the exact host wins", o.ID(), strings.Join(o.Hosts, ",")))
		}
	}
	return out
}

func lossReason(w, l *route.Route) string {
	switch {
	case w.Blocked != "" && l.Blocked == "":
		return "a blocked route wins, fail closed"
	case w.Weighted || l.Weighted:
		return "a weighted split"
	case w.Priority != l.Priority:
		return fmt.Sprintf("priority %d vs %d", w.Priority, l.Priority)
	case !w.Created.Equal(l.Created):
		return "same priority, the older service wins"
	}
	return "same priority and age: the lower service and route name wins"
}

// maxNearest bounds the routes a miss lists.
const maxNearest = 5

// nearest lists the routes closest to serving host and path: those of the
// host (their path does not cover it), then those whose path covers it on
// another host, each with the reason.
func nearest(t *route.Table, host, path string) []Miss {
	if t == nil {
		return nil
	}
	type cand struct {
		m    Miss
		rank int
	}
	var cs []cand
	for _, r := range t.Routes {
		kind, _ := hostMatch(r, host)
		pathOK := route.PathHasPrefix(path, r.Path)
		m := Miss{Route: r.ID(), Hosts: r.Hosts, Path: r.Path}
		switch {
		case kind != "" && !pathOK:
			m.Why = fmt.Sprintf("the host matches (%s) but the path %s does not lie under %s", kind, path, r.Path)
			cs = append(cs, cand{m, 0})
		case kind == "" && pathOK:
			m.Why = fmt.Sprintf("the path lies under %s but the host %s is not one of %s", r.Path, host, strings.Join(r.Hosts, ","))
			cs = append(cs, cand{m, 1 + sharedSuffix(r.Hosts, host)})
		case kind == "":
			m.Why = fmt.Sprintf("neither the host (%s) nor the path (%s) match", strings.Join(r.Hosts, ","), r.Path)
			cs = append(cs, cand{m, 100 + sharedSuffix(r.Hosts, host)})
		}
	}
	slices.SortStableFunc(cs, func(a, b cand) int {
		return cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(a.m.Route, b.m.Route))
	})
	var out []Miss
	for i := 0; i < len(cs) && i < maxNearest; i++ {
		out = append(out, cs[i].m)
	}
	return out
}

// sharedSuffix ranks hosts by how many trailing labels they share with
// host: 0 for the most alike, up to 50 for nothing in common.
func sharedSuffix(hosts []string, host string) int {
	best := 0
	hl := strings.Split(host, ".")
	for _, h := range hosts {
		l := strings.Split(strings.TrimPrefix(h, "*."), ".")
		n := 0
		for n < len(l) && n < len(hl) && l[len(l)-1-n] == hl[len(hl)-1-n] {
			n++
		}
		best = max(best, n)
	}
	return 50 - min(best, 50)
}

// WriteText prints an explanation for people.
func (e *Explanation) WriteText(w io.Writer) {
	fmt.Fprintf(w, "URL      %s\n", e.URL)
	fmt.Fprintf(w, "request  %s host %s path %s\n", strings.ToUpper(e.Scheme), e.Host, e.Path)
	if m := e.Match; m != nil {
		fmt.Fprintf(w, "route    %s (hosts %s, path %s, priority %d)\n", m.Route, strings.Join(m.Hosts, ","), m.Path, m.Priority)
		for _, y := range m.Why {
			fmt.Fprintf(w, "  why    %s\n", y)
		}
	}
	if len(e.Steps) > 0 {
		fmt.Fprintln(w, "steps, in order:")
		for i, s := range e.Steps {
			end := ""
			if s.Final {
				end = " [answers here]"
			}
			fmt.Fprintf(w, "  %d. %-16s %s (%s)%s\n", i+1, s.Stage, s.Effect, s.File, end)
		}
	}
	if len(e.Split) > 0 {
		fmt.Fprintln(w, "split:")
		for _, m := range e.Split {
			fmt.Fprintf(w, "  %s weight %d\n", m.Route, m.Weight)
		}
	}
	if e.Match != nil {
		ups := strings.Join(e.Upstreams, ", ")
		if ups == "" {
			ups = "(none)"
		}
		fmt.Fprintf(w, "upstreams in rotation: %s\n", ups)
	}
	if len(e.Nearest) > 0 {
		fmt.Fprintln(w, "nearest routes:")
		for _, m := range e.Nearest {
			fmt.Fprintf(w, "  %s (hosts %s, path %s): %s\n", m.Route, strings.Join(m.Hosts, ","), m.Path, m.Why)
		}
	}
	fmt.Fprintf(w, "outcome  %s\n", e.Outcome)
}
