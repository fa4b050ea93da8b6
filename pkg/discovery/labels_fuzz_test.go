package discovery

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/net/http/httpguts"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// FuzzParseLabels feeds ParseLabels labels written as "key=value" lines. It
// checks that it never panics, is deterministic, that every route it
// produces holds valid values, and that no route serves with a key that
// was reported as bad (bad labels never half-apply): such a route is only
// ever produced blocked, with no upstream.
func FuzzParseLabels(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "labels", "*.txt"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		input, _, _ := strings.Cut(string(data), "\n"+goldenSep+"\n")
		f.Add(input)
	}
	f.Add("ingress.host=a.com\ningress.routes.x.headers.X=\r\n")
	f.Fuzz(func(t *testing.T, input string) {
		labels := map[string]string{}
		for line := range strings.SplitSeq(input, "\n") {
			k, v, _ := strings.Cut(line, "=")
			labels[k] = v
		}
		const prefix = "ingress."
		specs, errs := ParseLabels(prefix, labels)
		specs2, errs2 := ParseLabels(prefix, labels)
		if !reflect.DeepEqual(specs, specs2) || !reflect.DeepEqual(errs, errs2) {
			t.Fatalf("not deterministic:\n%s\n%s", renderSpecs(specs, errs), renderSpecs(specs2, errs2))
		}
		for _, s := range specs {
			checkSpec(t, prefix, s)
		}
		for _, e := range errs {
			checkNotApplied(t, prefix, e, specs)
		}
	})
}

// checkNotApplied fails if a route was produced although e reports one of
// the labels it uses.
func checkNotApplied(t *testing.T, prefix string, e route.Error, specs []Spec) {
	t.Helper()
	if !strings.HasPrefix(e.Label, prefix) || e.Error == "" || e.Service != "" {
		t.Fatalf("bad error %+v", e)
	}
	if rest, ok := strings.CutPrefix(e.Label, prefix+routesPart); ok {
		name, _, _ := strings.Cut(rest, ".")
		if i := slices.IndexFunc(specs, func(s Spec) bool { return s.Route.Name == name }); i >= 0 && specs[i].Route.Blocked == "" {
			t.Fatalf("route %q produced unblocked despite error %+v", name, e)
		}
		return
	}
	for _, s := range specs {
		if s.Route.Blocked != "" {
			continue
		}
		for key, full := range s.Labels {
			if full == e.Label {
				t.Fatalf("route %q uses %s (key %s) despite error %q", s.Route.Name, full, key, e.Error)
			}
		}
	}
}

// checkSpec fails unless every field of s holds a valid, normalised value.
func checkSpec(t *testing.T, prefix string, s Spec) {
	t.Helper()
	r := s.Route
	if r.Name != DefaultRoute && !routeName.MatchString(r.Name) {
		t.Fatalf("route name %q", r.Name)
	}
	if len(r.Hosts) == 0 || !slices.IsSorted(r.Hosts) || len(slices.Compact(slices.Clone(r.Hosts))) != len(r.Hosts) {
		t.Fatalf("hosts %q: want non-empty, sorted, unique", r.Hosts)
	}
	for _, h := range r.Hosts {
		if got, err := parseHost(h); err != nil || got != h || h != strings.ToLower(h) || strings.HasSuffix(h, ".") {
			t.Fatalf("host %q not normalised: %q %v", h, got, err)
		}
	}
	if got, err := parsePath(r.Path); err != nil || got != r.Path || !strings.HasPrefix(r.Path, "/") ||
		(r.Path != "/" && strings.HasSuffix(r.Path, "/")) || strings.Contains(r.Path, "..") || strings.ContainsAny(r.Path, "?#") {
		t.Fatalf("path %q not normalised: %q %v", r.Path, got, err)
	}
	if r.Blocked != "" {
		checkBlocked(t, s)
		return
	}
	if r.Port == 0 || r.Timeout <= 0 || r.MaxBody < 0 {
		t.Fatalf("port %d timeout %s max_body %d", r.Port, r.Timeout, r.MaxBody)
	}
	if r.ConnectTimeout < 0 || r.ClientBodyTimeout < 0 || r.ClientWriteTimeout < 0 || r.UpstreamIdleTimeout < 0 {
		t.Fatalf("negative time bound in %+v", r)
	}
	if (r.TLS != route.TLSAuto && r.TLS != route.TLSOff) || (r.Redirect && r.TLS != route.TLSAuto) {
		t.Fatalf("tls %q redirect %t", r.TLS, r.Redirect)
	}
	if !slices.Contains([]string{route.SchemeHTTP, route.SchemeHTTPS, route.SchemeH2C}, r.Scheme) {
		t.Fatalf("scheme %q", r.Scheme)
	}
	if s.Upstream != "" && s.Upstream != route.ModeVIP && s.Upstream != route.ModeTasks {
		t.Fatalf("upstream %q", s.Upstream)
	}
	if r.Weight < 0 || r.Weight > route.MaxWeight || (!r.Weighted && r.Weight != 0) || r.SlowStart < 0 || r.SlowStart > maxSlowStart {
		t.Fatalf("weight %d (%t) slow_start %s", r.Weight, r.Weighted, r.SlowStart)
	}
	if r.Sticky != "" && !httpguts.ValidHeaderFieldName(r.Sticky) {
		t.Fatalf("sticky cookie name %q", r.Sticky)
	}
	if s.Network != "" && !networkName.MatchString(s.Network) {
		t.Fatalf("network %q", s.Network)
	}
	for _, u := range r.BasicAuth {
		if _, err := bcrypt.Cost(u.Hash); err != nil || u.User == "" {
			t.Fatalf("auth user %q: %v", u.User, err)
		}
	}
	for _, p := range r.Allow {
		if !p.IsValid() || p != p.Masked() {
			t.Fatalf("allow %s not masked", p)
		}
	}
	checkAccessFields(t, r)
	if !slices.IsSortedFunc(r.Headers, func(a, b route.Header) int { return strings.Compare(a.Name, b.Name) }) {
		t.Fatalf("headers not sorted: %+v", r.Headers)
	}
	for i, h := range r.Headers {
		if i > 0 && r.Headers[i-1].Name == h.Name {
			t.Fatalf("header %s twice", h.Name)
		}
		if h.Name != http.CanonicalHeaderKey(h.Name) || !httpguts.ValidHeaderFieldName(h.Name) ||
			!httpguts.ValidHeaderFieldValue(h.Value) || strings.ContainsAny(h.Value, "\r\n") {
			t.Fatalf("header %q: %q", h.Name, h.Value)
		}
	}
	checkHealthSpec(t, r)
	checkRewriteSpec(t, r)
	for key, full := range s.Labels {
		if !strings.HasPrefix(full, prefix) {
			t.Fatalf("key %s from label %s outside the prefix", key, full)
		}
	}
}

// checkBlocked fails unless s is a blocked route as failclosed.go makes
// them: it sets a security or unknown key, and carries nothing that could
// forward a request.
func checkBlocked(t *testing.T, s Spec) {
	t.Helper()
	r := s.Route
	guarded := false
	for key := range s.Labels {
		var scratch Spec
		err := applyLabel(&scratch, key, labelValue{full: "x", value: "x"})
		guarded = guarded || isSecurityKey(key) || errors.Is(err, errUnknownKey)
	}
	if !guarded {
		t.Fatalf("route %q blocked (%s) but sets no security or unknown key: %v", r.Name, r.Blocked, s.Labels)
	}
	if len(r.Upstreams) != 0 || r.Port != 0 || len(r.BasicAuth) != 0 || len(r.Allow) != 0 || len(r.Headers) != 0 || r.Redirect {
		t.Fatalf("blocked route %q carries settings: %+v", r.Name, r)
	}
}
