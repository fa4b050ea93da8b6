package proxy

import (
	"bufio"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/swarm-ingress/swarm-ingress/pkg/discovery"
	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// The attack corpus: one named case per probe of an attacker or an unlucky
// operator, each sent as raw bytes (Go's client would clean some of them)
// to a real Handler in front of real backends, and each asserting the
// secure outcome. To add a probe, add a row to attackCases; when it needs a
// route of its own, add it to newAttackRig.

// attackRig is an ingress with these hosts:
//
//	site.test     "/" public; "/admin" basic auth (alice:s3cret) and allow 127.0.0.0/8;
//	              "/api" public with strip_prefix
//	slashes.test  "/" public with allow_encoded_slashes; "/admin" as on site.test
//	typo.test     built from labels: "/" public; "/admin" sets auth.basci (a typo)
//
// Backends answer "<name> <request-target as received>".
type attackRig struct {
	front         string        // host:port of the ingress
	public, admin *atomic.Int64 // requests that reached each backend's socket
	errors        []route.Error // discovery's report on the typo.test labels
}

const (
	attackUser = "alice"
	attackPass = "s3cret"
)

func newAttackRig(t testing.TB) *attackRig {
	t.Helper()
	rig := &attackRig{public: new(atomic.Int64), admin: new(atomic.Int64)}
	serve := func(name string, hits *atomic.Int64) netip.AddrPort {
		s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, name+" "+r.RequestURI)
		}))
		// A connection turns active as soon as request bytes arrive, even
		// ones the server then refuses: every contact counts.
		s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
			if st == http.StateActive {
				hits.Add(1)
			}
		}
		s.Start()
		t.Cleanup(s.Close)
		return addrOf(t, s)
	}
	public, admin := serve("public", rig.public), serve("admin", rig.admin)
	hash, err := bcrypt.GenerateFromPassword([]byte(attackPass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	protected := func(host string) *route.Route {
		r := testRoute(host, admin)
		r.Name, r.Path = "admin", "/admin"
		r.BasicAuth = []route.BasicUser{{User: attackUser, Hash: hash}}
		r.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		return r
	}
	slashes := testRoute("slashes.test", public)
	slashes.Service, slashes.AllowEncodedSlashes = "slashes", true
	slashesAdmin := protected("slashes.test")
	slashesAdmin.Service = "slashes"

	typo, errs := discovery.Build(discovery.Input{LabelPrefix: "ingress.", Static: []discovery.StaticService{{
		Name: "typo", Upstreams: []netip.AddrPort{public},
		Labels: map[string]string{
			"ingress.host":                    "typo.test",
			"ingress.tls":                     "off",
			"ingress.routes.admin.path":       "/admin",
			"ingress.routes.admin.auth.basci": attackUser + ":" + string(hash),
		},
	}}})
	rig.errors = errs
	api := testRoute("site.test", public)
	api.Name, api.Path, api.StripPrefix = "api", "/api", true
	routes := append([]*route.Route{testRoute("site.test", public), protected("site.test"), api, slashes, slashesAdmin}, typo...)
	rig.front = strings.TrimPrefix(newFixture(t, Config{}, table(routes...)).front.URL, "http://")
	return rig
}

// attackResult is what a probe got: the status, the backend that answered
// ("" for none: the body came from the ingress) and the request-target
// that backend received.
type attackResult struct {
	status     int
	from, path string
	body       string
}

// send writes raw on a new connection and reads one response. The
// connection's deadline only keeps a broken ingress from hanging the test.
func (rig *attackRig) send(t testing.TB, raw string) attackResult {
	t.Helper()
	conn, err := net.Dial("tcp4", rig.front)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(waitLimit))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%q: read response: %v", raw, err)
	}
	defer res.Body.Close()
	body := readAll(t, res.Body)
	out := attackResult{status: res.StatusCode, body: body}
	if name, target, ok := strings.Cut(body, " "); ok && (name == "public" || name == "admin") {
		out.from, out.path = name, target
	}
	return out
}

// rawGET is a raw GET of target on host, with alice's credentials if authed.
func rawGET(target, host string, authed bool) string {
	auth := ""
	if authed {
		auth = "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(attackUser+":"+attackPass)) + "\r\n"
	}
	return "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n" + auth + "Connection: close\r\n\r\n"
}

type attackCase struct {
	name     string
	raw      string // the request bytes
	status   int    // the secure outcome
	from     string // backend that must answer; "" for none (no upstream contact)
	path     string // with from: the request-target it must receive
	wantBody string // without from: the exact body, when set
}

var attackCases = []attackCase{
	// Path safety: no spelling of a path reaches a protected prefix's
	// content through another route.
	{name: "doubled slash meets /admin's auth", raw: rawGET("//admin/secret.txt", "site.test", false), status: 401},
	{name: "encoded slash refused", raw: rawGET("/%2Fadmin/secret.txt", "site.test", false), status: 400, wantBody: "Bad Request\n"},
	{name: "lower-case encoded slash refused", raw: rawGET("/%2fadmin/secret.txt", "site.test", false), status: 400},
	{name: "encoded slash inside a path refused", raw: rawGET("/admin%2Fsecret.txt", "site.test", false), status: 400},
	{name: "encoded backslash refused", raw: rawGET("/%5Cadmin/secret.txt", "site.test", false), status: 400},
	{name: "raw backslash refused", raw: rawGET(`/\admin/secret.txt`, "site.test", false), status: 400},
	{name: "escaped dot segments resolved", raw: rawGET("/public/%2e%2E/admin/secret.txt", "site.test", false), status: 401},
	{name: "dot segments resolved", raw: rawGET("/public/../admin/secret.txt", "site.test", false), status: 401},
	{name: "upper case meets /admin's auth", raw: rawGET("/ADMIN/secret.txt", "site.test", false), status: 401},
	{name: "escaped letters meet /admin's auth", raw: rawGET("/%61dmin/secret.txt", "site.test", false), status: 401},
	{name: "absolute-form doubled slash", raw: rawGET("http://site.test//admin/secret.txt", "site.test", false), status: 401},
	{name: "escaped NUL refused", raw: rawGET("/admin%00/secret.txt", "site.test", false), status: 400},
	{name: "escaped newline refused", raw: rawGET("/public%0A", "site.test", false), status: 400},
	{name: "opaque target refused", raw: rawGET("http:admin/secret.txt", "site.test", false), status: 400},
	{name: "OPTIONS * answered by net/http, never forwarded", raw: "OPTIONS * HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n", status: 200, wantBody: ""},
	{name: "asterisk-form refused", raw: "GET * HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n", status: 400},
	{name: "the canonical path is what /admin's upstream receives",
		raw: rawGET("//ADMIN/./x/..//secret%2etxt?q=%2F", "site.test", true), status: 200, from: "admin", path: "/ADMIN/secret.txt?q=%2F"},
	{name: "the canonical path is what / receives", raw: rawGET("//a//%62/./c%3b/", "site.test", false), status: 200, from: "public", path: "/a/b/c%3B/"},
	{name: "the ReverseProxy path forwards the canonical path too",
		raw: "GET //a/%2e%2e/%62 HTTP/1.1\r\nHost: site.test\r\nTE: trailers\r\nConnection: close\r\n\r\n", status: 200, from: "public", path: "/b"},
	{name: "strip_prefix strips the canonical path", raw: rawGET("/API//v1/%2e/x%3b", "site.test", false), status: 200, from: "public", path: "/v1/x%3B"},
	{name: "strip_prefix strips escaped letters", raw: rawGET("/%61pi", "site.test", false), status: 200, from: "public", path: "/"},
	{name: "opted-in encoded slash stays encoded", raw: rawGET("/files/a%2fb", "slashes.test", false), status: 200, from: "public", path: "/files/a%2Fb"},
	{name: "opted-in encoded slash cannot reach a protected prefix", raw: rawGET("/%2Fadmin/secret.txt", "slashes.test", false), status: 400},
	{name: "opted-in encoded slash cannot climb into a protected prefix", raw: rawGET("/x/..%2Fadmin/secret.txt", "slashes.test", false), status: 400},

	// Fail closed: a route whose security setting cannot be applied
	// blocks its path; it never falls through to "/".
	{name: "typo in auth.basic blocks /admin", raw: rawGET("/admin/secret.txt", "typo.test", false), status: 503, wantBody: "Service Unavailable\n"},
	{name: "typo'd route blocked in any case", raw: rawGET("//ADMIN/secret.txt", "typo.test", true), status: 503},
	{name: "typo'd route blocked for any method", raw: "POST /admin HTTP/1.1\r\nHost: typo.test\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi", status: 503},
	{name: "the rest of the typo'd service serves", raw: rawGET("/public", "typo.test", false), status: 200, from: "public", path: "/public"},
}

func TestAttackCorpus(t *testing.T) {
	rig := newAttackRig(t)
	if len(rig.errors) != 1 || rig.errors[0].Label != "ingress.routes.admin.auth.basci" {
		t.Fatalf("discovery report on the typo: %+v, want one error naming ingress.routes.admin.auth.basci", rig.errors)
	}
	for _, tc := range attackCases {
		t.Run(tc.name, func(t *testing.T) {
			public, admin := rig.public.Load(), rig.admin.Load()
			got := rig.send(t, tc.raw)
			if got.status != tc.status || got.from != tc.from || tc.from != "" && got.path != tc.path {
				t.Fatalf("got %d from %q (%q), body %q; want %d from %q (%q)", got.status, got.from, got.path, got.body, tc.status, tc.from, tc.path)
			}
			if tc.from == "" && (rig.public.Load() != public || rig.admin.Load() != admin) {
				t.Fatalf("an upstream was contacted (public %d→%d, admin %d→%d)", public, rig.public.Load(), admin, rig.admin.Load())
			}
			if tc.wantBody != "" && got.body != tc.wantBody {
				t.Fatalf("body %q, want %q", got.body, tc.wantBody)
			}
		})
	}
}
