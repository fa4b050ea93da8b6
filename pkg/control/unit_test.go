package control

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

type fakeResolver struct {
	addrs []netip.Addr
	err   error
	asked []string // "network host"
}

func (r *fakeResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	r.asked = append(r.asked, network+" "+host)
	return r.addrs, r.err
}

func TestDNSLocator(t *testing.T) {
	tests := []struct {
		name    string
		addrs   []netip.Addr
		err     error
		want    []string
		wantErr bool
	}{
		{name: "tasks", addrs: []netip.Addr{netip.MustParseAddr("10.0.1.5"), netip.MustParseAddr("10.0.1.6")},
			want: []string{"10.0.1.5:8443", "10.0.1.6:8443"}},
		{name: "IPv6 dropped, mapped IPv4 kept", addrs: []netip.Addr{netip.MustParseAddr("fd00::1"), netip.MustParseAddr("::ffff:10.0.1.7")},
			want: []string{"10.0.1.7:8443"}},
		{name: "lookup fails", err: errors.New("no such host"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &fakeResolver{addrs: tt.addrs, err: tt.err}
			got, err := DNS(r, "ingress_controller", 8443)(context.Background())
			if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
				t.Errorf("got %v, %v; want %v (error %v)", got, err, tt.want, tt.wantErr)
			}
			if !slices.Equal(r.asked, []string{"ip4 tasks.ingress_controller"}) {
				t.Errorf("asked %v, want an IPv4 lookup of tasks.ingress_controller", r.asked)
			}
		})
	}
}

// A controller's own versions never go backwards, even if its clock does.
func TestServerVersionsIncrease(t *testing.T) {
	s, err := NewServer(ServerConfig{Secret: testSecret(t, "one secret for the whole cluster")})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now()
	tests := []struct {
		name string
		at   time.Time
		want int64
	}{
		{name: "first", at: base, want: base.UnixNano()},
		{name: "later", at: base.Add(time.Second), want: base.Add(time.Second).UnixNano()},
		{name: "clock stepped back", at: base, want: base.Add(time.Second).UnixNano() + 1},
	}
	for _, tt := range tests {
		s.SetTable(testTable(tt.at, "a.example.test"))
		if got := s.table.Version; got != tt.want {
			t.Errorf("%s: version %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestSecretSize(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		wantErr bool
	}{
		{name: "base64 with newline", data: "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlYw==\n"},
		{name: "too short", data: "short\n", wantErr: true},
		{name: "empty", data: "", wantErr: true},
	}
	for _, tt := range tests {
		_, err := NewSecret([]byte(tt.data), testSetting)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: error %v, want error %v", tt.name, err, tt.wantErr)
		}
	}
	// The same secret with or without its trailing newline derives the same keys.
	a, b := testSecret(t, "0123456789abcdef0123"), testSecret(t, "0123456789abcdef0123\n")
	if !bytes.Equal(a.stateKey, b.stateKey) || !a.ca.Equal(b.ca) {
		t.Error("a trailing newline changed the derived keys")
	}
	if c := testSecret(t, "0123456789abcdef0124"); bytes.Equal(a.stateKey, c.stateKey) || a.ca.Equal(c.ca) {
		t.Error("two secrets derived the same keys")
	}
}

// A table survives the wire: every route field, the controller's errors and
// whether it is partial.
func TestTableRoundTrip(t *testing.T) {
	r := &route.Route{
		Service: "app", ServiceID: "abc", Name: "api", Created: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Hosts: []string{"app.example.test", "*.example.test"}, Path: "/api", Port: 8080, StripPrefix: true,
		TLS: route.TLSAuto, Redirect: true, Mode: route.ModeTasks, Network: "front",
		Upstreams: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.3:8080")}, Scheme: route.SchemeH2C,
		Stream: true, Timeout: 5 * time.Second, MaxBody: 1 << 20,
		BasicAuth: []route.BasicUser{{User: "u", Hash: []byte("$2a$10$hash")}},
		Allow:     []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		Headers:   []route.Header{{Name: "X-A", Value: "1"}}, Priority: 3,
		ConnectTimeout: time.Second, ClientBodyTimeout: 2 * time.Second, ClientWriteTimeout: 3 * time.Second,
		UpstreamIdleTimeout: 4 * time.Second, AllowEncodedSlashes: true, Blocked: "a test reason",
		Limit:         route.Limit{Rate: route.Rate{N: 10, Per: time.Second}, Burst: 5, Conn: 2},
		BasicAuthFile: "/run/secrets/htpasswd",
		ForwardAuth:   route.ForwardAuth{URL: "http://auth:4180/auth", Headers: []string{"X-User"}},
		ErrorPages:    []route.ErrorPage{{Code: 502, Source: "/p/502.html"}}, Maintenance: true,
		EjectAfter: 4, EjectFor: 7 * time.Second,
		HealthCheck: &route.HealthCheck{Path: "/healthz?x=1", Interval: 3 * time.Second, Timeout: time.Second, StatusMin: 200, StatusMax: 204, Port: 8081},
		Weight:      90, Weighted: true, Sticky: "SHOP", SlowStart: 30 * time.Second,
		Return:         route.Return{Code: 301, URL: "https://example.test$request_uri"},
		CanonicalHost:  "app.example.test",
		Rewrites:       []route.Rewrite{{Regex: `^/old/(.*)$`, Replacement: "/new/$1", Code: 308, Last: true}},
		RequestHeaders: []route.Header{{Name: "X-Real-Ip", Value: "$remote_addr"}}, RequestHeadersAdd: []route.Header{{Name: "X-Tag", Value: "a"}},
		RequestHeadersRemove: []string{"Cookie"}, ResponseHeadersRemove: []string{"Server"},
		Compress: route.Compression{Encodings: []string{"zstd", "gzip"}, Types: []string{"text/html"}, MinSize: 1000},
	}
	// Every field is set, so a field the wire format loses fails the test:
	// a new Route field must be added above.
	v := reflect.ValueOf(r).Elem()
	for i := range v.NumField() {
		if v.Type().Field(i).IsExported() && v.Field(i).IsZero() {
			t.Errorf("the test route leaves %s unset; set it so the round trip checks it", v.Type().Field(i).Name)
		}
	}
	errs := []route.Error{{Service: "bad", Label: "ingress.port", Error: "not a number"}}
	in := route.New(route.Snapshot{UpdatedAt: time.Unix(0, 42), Routes: []*route.Route{r}, Errors: errs, Partial: true})
	var buf bytes.Buffer
	if err := writeFrame(&buf, &update{Table: NewTable(in, 42)}); err != nil {
		t.Fatal(err)
	}
	var u update
	if err := readFrame(&buf, &u); err != nil {
		t.Fatal(err)
	}
	out := u.Table.Build()
	if !out.SameContent(in) { // SameContent compares Partial too
		t.Errorf("round trip changed the table:\n in  %+v %v\n out %+v %v", in.Routes[0], in.Errors, out.Routes[0], out.Errors)
	}
	if out.Match("x.example.test", "/api/v1") == nil {
		t.Error("the rebuilt table does not match a wildcard host")
	}
}
