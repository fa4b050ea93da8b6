package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// waitLimit bounds every wait in these tests; reaching it is a failure (a
// deadlock or a buffered stream), never a measurement.
const waitLimit = 10 * time.Second

// testRoute is a plain-HTTP route for host on "/" to ups.
func testRoute(host string, ups ...netip.AddrPort) *route.Route {
	return &route.Route{
		Service: "svc", Name: "default", Hosts: []string{host}, Path: "/",
		TLS: route.TLSOff, Mode: route.ModeTasks, Scheme: route.SchemeHTTP, Upstreams: ups,
	}
}

func table(routes ...*route.Route) *route.Table {
	return route.New(route.Snapshot{Generation: 1, Routes: routes})
}

// addrOf is the upstream address of a test server.
func addrOf(t testing.TB, s *httptest.Server) netip.AddrPort {
	t.Helper()
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	return netip.MustParseAddrPort(u.Host)
}

// deadAddr is a loopback address where nothing listens (connection refused).
func deadAddr(t testing.TB) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	return a
}

// backend starts a test server running h.
func backend(t testing.TB, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

type fixture struct {
	h     *Handler
	reg   *prometheus.Registry
	front *httptest.Server
}

// newFixture serves a Handler for cfg (registry and logger filled in when
// unset) on a plain HTTP test server.
func newFixture(t testing.TB, cfg Config, tbl *route.Table) *fixture {
	t.Helper()
	reg := prometheus.NewRegistry()
	if cfg.Registerer == nil {
		cfg.Registerer = reg
	}
	h := New(cfg)
	t.Cleanup(func() { _ = h.Close() }) // after front.Close: cleanups run last first
	h.SetTable(tbl)
	front := httptest.NewServer(h)
	t.Cleanup(front.Close)
	return &fixture{h: h, reg: reg, front: front}
}

// get sends method to the fixture with the given Host header.
func (f *fixture) do(t testing.TB, req *http.Request) *http.Response {
	t.Helper()
	res, err := f.front.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

func (f *fixture) newRequest(t testing.TB, method, host, target string, body io.Reader) *http.Request {
	t.Helper()
	return newRequest(t, method, f.front.URL+target, host, body)
}

// newRequest builds a request whose whole exchange is bounded by waitLimit,
// so that a proxy that holds a response back fails the test, never hangs it.
func newRequest(t testing.TB, method, url, host string, body io.Reader) *http.Request {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	return req
}

func readAll(t testing.TB, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

func newLogger(w io.Writer) zerolog.Logger { return zerolog.New(w).Level(zerolog.InfoLevel) }

// metricValue reads a gauge or counter.
func metricValue(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if g := d.GetGauge(); g != nil {
		return g.GetValue()
	}
	return d.GetCounter().GetValue()
}
