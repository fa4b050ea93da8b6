package nginximport

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/swarm-ingress/swarm-ingress/pkg/discovery"
	"github.com/swarm-ingress/swarm-ingress/pkg/nginxconf"
)

// agreed are the label keys of issue 13 and the time bounds, as the
// engineers agreed them before they all landed (docs/labels.md lists those
// that have): the translator may emit these even while the parser does
// not know them yet.
var agreed = []*regexp.Regexp{
	regexp.MustCompile(`^(return|canonical_host|rewrite|rewrite\.[1-9][0-9]*|request_headers_remove|response_headers_remove)$`),
	regexp.MustCompile(`^(request_headers|request_headers_add)\.[A-Za-z0-9-]+$`),
	regexp.MustCompile(`^(compress|compress\.types|compress\.min_size)$`),
	regexp.MustCompile(`^(limit\.rate|limit\.burst|limit\.conn)$`),
	regexp.MustCompile(`^(auth\.basic_file|auth\.forward|auth\.forward\.headers|maintenance)$`),
	regexp.MustCompile(`^error_page\.(502|503|504)$`),
	regexp.MustCompile(`^(timeout|connect_timeout|client_body_timeout|client_write_timeout|upstream_idle_timeout|max_body|auth\.basic|allow|stream|port|host|path|tls|redirect|strip_prefix|scheme|upstream)$`),
	regexp.MustCompile(`^headers\.[A-Za-z0-9-]+$`),
}

// TestEmittedKeysKnown parses every label the corpus translates to with
// pkg/discovery's parser. A key the parser knows must hold a valid value;
// a key it does not know yet must be one of the agreed keys (so that a
// typo fails), and is logged until it lands.
func TestEmittedKeysKnown(t *testing.T) {
	pending := map[string]bool{}
	for _, file := range corpus(t) {
		res := translateFile(t, file)
		for _, s := range append(slices.Clone(res.Services), res.Static...) {
			for _, r := range s.Routes {
				checkRoute(t, file, r, pending)
			}
		}
	}
	var keys []string
	for k := range pending {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if len(keys) > 0 {
		t.Logf("emitted keys the label parser does not know yet (agreed, landing today): %s", strings.Join(keys, ", "))
	}
}

// checkRoute parses one route's labels together (some keys need others,
// e.g. limit.burst a limit.rate) and checks each error.
func checkRoute(t *testing.T, file string, r *Route, pending map[string]bool) {
	t.Helper()
	labels := map[string]string{}
	for _, l := range r.Labels {
		labels[Prefix+l.Key] = l.Value
	}
	_, errs := discovery.ParseLabels(Prefix, labels)
	unknown := map[string]bool{}
	for _, e := range errs {
		key, _ := strings.CutPrefix(e.Label, Prefix)
		if strings.Contains(e.Error, "unknown key") {
			unknown[key] = true
			if !slices.ContainsFunc(agreed, func(re *regexp.Regexp) bool { return re.MatchString(key) }) {
				t.Errorf("%s: emits %s, which is neither known to the label parser nor an agreed key", file, key)
			}
			pending[keyPattern(key)] = true
		}
	}
	for _, e := range errs {
		key, _ := strings.CutPrefix(e.Label, Prefix)
		switch {
		case unknown[key]:
		case key == "auth.basic_file" || strings.HasPrefix(key, "error_page."):
			t.Logf("%s: %s=%q: %s (a path on the machine that runs the ingress)", file, key, labels[e.Label], e.Error)
		default:
			t.Errorf("%s: %s=%q is refused by the label parser: %s", file, key, labels[e.Label], e.Error)
		}
	}
}

// keyPattern folds the header name or index of a key: headers.<Name>.
func keyPattern(k string) string {
	for _, p := range []string{"request_headers_add.", "request_headers.", "headers.", "rewrite.", "error_page."} {
		if strings.HasPrefix(k, p) {
			return p + "<N>"
		}
	}
	return k
}

// FuzzTranslate: any configuration the parser accepts translates without
// panicking, and every route has a host.
func FuzzTranslate(f *testing.F) {
	for _, file := range corpus(f) {
		ds, err := nginxconf.Parse(file, nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(nginxconf.Format(ds))
	}
	f.Add("server { server_name a; location ~ x { proxy_pass http://$x; } location = / { return 301 /y; } }")
	f.Add("upstream u { server 127.0.0.1; server b; } server { listen 443 ssl; server_name .x.example; location / { proxy_pass http://u/a/; error_page 502 @e; } location @e { proxy_pass http://e; } }")
	f.Fuzz(func(t *testing.T, src string) {
		ds, err := nginxconf.ParseBytes("f.conf", []byte(src))
		if err != nil {
			return
		}
		res := Translate([][]*nginxconf.Directive{ds}, Options{})
		for _, s := range append(slices.Clone(res.Services), res.Static...) {
			if s.Name == "" {
				t.Fatalf("a service without a name")
			}
			for _, r := range s.Routes {
				if r.Get("host") == "" {
					t.Fatalf("service %s: a route without host: %v", s.Name, r.Labels)
				}
			}
		}
		var b strings.Builder
		WriteStack(&b, res)
		WriteRoutesFile(&b, res)
	})
}
