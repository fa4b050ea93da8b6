package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/swarm-ingress/swarm-ingress/pkg/proxy/internal/h1"
	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// Helpers of the wire-level attack corpus (attack_wire_test.go).

// attackFront is a Handler with metrics (and, if asked, access log lines)
// on a real NewServer (plain, or TLS with HTTP/2).
type attackFront struct {
	*served
	f    *fixture // for gathered: the registry
	logs logLines
}

func newAttackFront(t *testing.T, useTLS, logged bool, routes ...*route.Route) *attackFront {
	t.Helper()
	f := &fixture{reg: prometheus.NewRegistry()}
	cfg := Config{Registerer: f.reg}
	var logs logLines
	if logged {
		logs = make(logLines, 64)
		cfg.Logger = newLogger(logs)
	}
	f.h = New(cfg)
	f.h.SetTable(table(routes...))
	return &attackFront{served: serve(t, f.h, useTLS), f: f, logs: logs}
}

func (a *attackFront) counter(t *testing.T, family, route, kind string) float64 {
	t.Helper()
	v, _ := gathered(t, a.f, family, map[string]string{"route": route, "kind": kind})
	return v
}

// rawConn dials the front and bounds the whole exchange by waitLimit.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(waitLimit))
	return c
}

// bodyReader is an upstream that reads the request body and reports when
// its first bytes arrived and how the body ended.
func bodyReader(t *testing.T) (*httptest.Server, chan time.Time, chan error) {
	first, ended := make(chan time.Time, 1), make(chan error, 1)
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		var buf [512]byte
		n, err := r.Body.Read(buf[:])
		if n > 0 {
			first <- time.Now()
		}
		if err == nil {
			_, err = io.Copy(io.Discard, r.Body)
		}
		if err == io.EOF {
			err = nil
		}
		ended <- err
	})
	return up, first, ended
}

// checkTimeoutRecorded: the access log names the limit, with the status,
// and the limit's counter is 1.
func checkTimeoutRecorded(t *testing.T, a *attackFront, line map[string]any, kind string, status int) {
	t.Helper()
	if line[fieldTimeout] != kind || line[fieldStatus] != float64(status) {
		t.Errorf("access log %v: want timeout %q, status %d", line, kind, status)
	}
	if n := a.counter(t, "ingress_timeouts_total", "svc/default", kind); n != 1 {
		t.Errorf("ingress_timeouts_total{kind=%q} = %v, want 1", kind, n)
	}
}

// idleConns counts the pooled connections to addr of h's HTTP/1.1 transports.
func idleConns(h *Handler, addr netip.AddrPort) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, rt := range h.transports {
		if t, ok := rt.(*h1.Transport); ok {
			n += t.Idle(addr.String())
		}
	}
	return n
}

// smallSendBuffers gives accepted connections a small send buffer.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// h2Client is a raw HTTP/2 client over TLS: preface and settings sent, a
// goroutine reading frames into a channel.
type h2Client struct {
	conn   *tls.Conn
	bw     *bufio.Writer
	fr     *http2.Framer // writes through bw
	frames chan http2.Frame
	block  []byte // the header block of GET / for app.test
}

func dialH2(t *testing.T, addr string, settings ...http2.Setting) *h2Client {
	t.Helper()
	conn, err := tls.Dial("tcp4", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("negotiated %q, want h2", p)
	}
	c := &h2Client{conn: conn, bw: bufio.NewWriterSize(conn, 64<<10), frames: make(chan http2.Frame, 64)}
	c.fr = http2.NewFramer(c.bw, nil)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "app.test"}, {":path", "/"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	c.block = hb.Bytes()
	if _, err := io.WriteString(c.bw, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := c.fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	if err := c.bw.Flush(); err != nil {
		t.Fatal(err)
	}
	rfr := http2.NewFramer(nil, conn)
	rfr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	go func() {
		defer close(c.frames)
		for {
			f, err := rfr.ReadFrame()
			if err != nil {
				return
			}
			select {
			case c.frames <- f:
			default: // nobody is looking: drop
			}
		}
	}()
	return c
}

// waitDialsDone waits until no dial of h's HTTP/1.1 transports is in progress.
func waitDialsDone(t *testing.T, h *Handler) {
	t.Helper()
	for end := time.Now().Add(waitLimit); ; time.Sleep(10 * time.Millisecond) {
		busy := 0
		h.mu.Lock()
		for _, rt := range h.transports {
			if tr, ok := rt.(*h1.Transport); ok {
				busy += tr.Dialing()
			}
		}
		h.mu.Unlock()
		if busy == 0 {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%d upstream dials still in progress", busy)
		}
	}
}

// syncAccepts makes one request to up on a fresh connection: the server
// accepts in order, so once it is answered every connection set up before
// it has been accepted and counted.
func syncAccepts(t *testing.T, up *httptest.Server) {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr}).Do(newRequest(t, "GET", up.URL+"/", "sync", nil))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
}

// upstreamErrorKinds lists the kinds of ingress_upstream_errors_total with a
// non-zero count.
func upstreamErrorKinds(t *testing.T, a *attackFront) []string {
	t.Helper()
	families, err := a.f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, fam := range families {
		if fam.GetName() != "ingress_upstream_errors_total" {
			continue
		}
		for _, m := range fam.GetMetric() {
			if value(m) > 0 {
				for _, l := range m.GetLabel() {
					if l.GetName() == "kind" {
						kinds = append(kinds, l.GetValue())
					}
				}
			}
		}
	}
	return kinds
}
