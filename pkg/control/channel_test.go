package control

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/certs"
)

// The edge receives the whole state on connect, then each change.
func TestFullStateThenUpdates(t *testing.T) {
	sec := testSecret(t, "one secret for the whole cluster")
	base := time.Now()
	srv := startServer(t, sec, "ctl-1", nil)
	srv.SetTable(testTable(base, "a.example.test"))
	certA, _ := testCert(t, "a.example.test", base.Add(-time.Hour))
	srv.SetCerts([]Cert{certA})

	e := startEdge(t, sec, []string{srv.addr}, nil)
	waitEdge(t, e.Edge, "the first table", hasHost(e.Edge, "a.example.test"))
	if c, err := serveName(e.Edge, "a.example.test"); err != nil || c == nil {
		t.Fatalf("certificate of a.example.test: %v", err)
	}

	tests := []struct {
		name  string
		hosts []string
	}{
		{name: "route added", hosts: []string{"a.example.test", "b.example.test"}},
		{name: "route removed", hosts: []string{"b.example.test"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.SetTable(testTable(base.Add(time.Duration(i+1)*time.Second), tt.hosts...))
			waitEdge(t, e.Edge, "the new table", func() bool { return slices.Equal(hosts(e.Table()), tt.hosts) })
		})
	}
	// The certificate of a host that left the table is no longer served.
	if _, err := serveName(e.Edge, "a.example.test"); err == nil {
		t.Error("a.example.test still has a certificate after leaving the table")
	}
	st := e.Status()
	if !st.Ready || len(st.Controllers) != 1 || !st.Controllers[0].Connected || !strings.Contains(st.From, "ctl-1") {
		t.Errorf("status %+v: want ready, following ctl-1", st)
	}
}

// An edge applies a table only when its version is above the one it holds,
// and never a partial table (routes file only) over a complete one.
func TestApplyVersionRule(t *testing.T) {
	sec := testSecret(t, "one secret for the whole cluster")
	base := time.Now()
	tests := []struct {
		name            string
		held            time.Time
		heldPartial     bool
		incoming        time.Time
		incomingPartial bool
		wantHosts       []string
		wantPartial     bool
	}{
		{name: "newer applies", held: base, incoming: base.Add(time.Millisecond), wantHosts: []string{"new.example.test"}},
		{name: "older is refused", held: base, incoming: base.Add(-time.Second), wantHosts: []string{"held.example.test"}},
		{name: "equal is refused", held: base, incoming: base, wantHosts: []string{"held.example.test"}},
		{name: "newer partial is refused over a complete one", held: base, incoming: base.Add(time.Second), incomingPartial: true, wantHosts: []string{"held.example.test"}},
		{name: "newer partial replaces a partial one", held: base, heldPartial: true, incoming: base.Add(time.Second), incomingPartial: true, wantHosts: []string{"new.example.test"}, wantPartial: true},
		{name: "newer complete replaces a partial one", held: base, heldPartial: true, incoming: base.Add(time.Second), wantHosts: []string{"new.example.test"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := NewEdge(EdgeConfig{Secret: sec, Controllers: Static()})
			if err != nil {
				t.Fatal(err)
			}
			l := &link{addr: "192.0.2.1:8443"}
			held := testTable(tt.held, "held.example.test")
			held.Partial = tt.heldPartial
			incoming := testTable(tt.incoming, "new.example.test")
			incoming.Partial = tt.incomingPartial
			e.apply(l, &update{Seq: 1, Full: true, Table: NewTable(held, tt.held.UnixNano())})
			e.apply(l, &update{Seq: 2, Table: NewTable(incoming, tt.incoming.UnixNano())})
			if got := hosts(e.Table()); !slices.Equal(got, tt.wantHosts) {
				t.Errorf("hosts %v, want %v", got, tt.wantHosts)
			}
			if got := e.Table().Partial; got != tt.wantPartial {
				t.Errorf("partial %v, want %v", got, tt.wantPartial)
			}
		})
	}
}

// Two controllers: the lagging one (older read) cannot roll the edge back,
// and when it stops the other keeps the edge up to date.
func TestLaggingControllerAndFailover(t *testing.T) {
	sec := testSecret(t, "one secret for the whole cluster")
	base := time.Now()
	fresh := startServer(t, sec, "ctl-fresh", nil)
	lagging := startServer(t, sec, "ctl-lagging", nil)
	fresh.SetTable(testTable(base.Add(time.Second), "new.example.test"))
	lagging.SetTable(testTable(base, "old.example.test"))

	e := startEdge(t, sec, []string{fresh.addr, lagging.addr}, nil)
	waitEdge(t, e.Edge, "both controllers connected", func() bool {
		st := e.Status()
		return len(st.Controllers) == 2 && st.Controllers[0].Connected && st.Controllers[1].Connected
	})
	if got := hosts(e.Table()); !slices.Equal(got, []string{"new.example.test"}) {
		t.Fatalf("hosts %v: the lagging controller's older table was applied", got)
	}

	fresh.stop()
	waitEdge(t, e.Edge, "the stopped controller disconnected", func() bool {
		for _, c := range e.Status().Controllers {
			if c.Name == "ctl-fresh" && c.Connected {
				return false
			}
		}
		return true
	})
	if !hasHost(e.Edge, "new.example.test")() {
		t.Fatal("the edge dropped its table when a controller stopped")
	}
	lagging.SetTable(testTable(base.Add(2*time.Second), "new.example.test", "later.example.test"))
	waitEdge(t, e.Edge, "the remaining controller's update", hasHost(e.Edge, "later.example.test"))
}

// A peer with another secret, or none, is refused, and both sides say which
// setting to fix.
func TestWrongSecretRefused(t *testing.T) {
	srv := startServer(t, testSecret(t, "the controllers' secret value"), "ctl", nil)
	srv.SetTable(testTable(time.Now(), "a.example.test"))

	e := startEdge(t, testSecret(t, "some other secret value!!"), []string{srv.addr}, nil)
	waitLog(t, e.logs, "refused by the controller or refused it", "not signed with this process's control secret", testSetting)
	waitLog(t, srv.logs, "refused a control connection", "refused this process's certificate", testSetting)
	if e.Table() != nil {
		t.Error("an edge with the wrong secret received a table")
	}

	// A client with no certificate at all.
	c, err := tls.Dial("tcp", srv.addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err == nil {
		c.Read(make([]byte, 1)) // TLS 1.3: the server's refusal arrives after the client's Finished
		c.Close()
	}
	waitLog(t, srv.logs, "presented no certificate", testSetting)
}

// capture records every byte a connection carries, both ways.
type capture struct {
	net.Conn
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (c capture) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.buf.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.buf.Write(p)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// The channel is TLS: a capture starts with a handshake record and holds no
// route name, host name or private key.
func TestChannelIsEncrypted(t *testing.T) {
	sec := testSecret(t, "one secret for the whole cluster")
	srv := startServer(t, sec, "ctl", nil)
	tbl := testTable(time.Now(), "secret-host.example.test")
	srv.SetTable(tbl)
	cert, keyDER := testCert(t, "secret-host.example.test", time.Now().Add(-time.Hour))
	srv.SetCerts([]Cert{cert})

	var mu sync.Mutex
	var buf bytes.Buffer
	e := startEdge(t, sec, []string{srv.addr}, func(c *EdgeConfig) {
		c.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return capture{Conn: conn, mu: &mu, buf: &buf}, nil
		}
	})
	waitEdge(t, e.Edge, "the table and certificate", func() bool {
		_, err := serveName(e.Edge, "secret-host.example.test")
		return err == nil
	})
	srv.PutChallenge(context.Background(), "tok123challenge+http-01", []byte("key-authorization-value"))
	e.stop()

	mu.Lock()
	data := bytes.Clone(buf.Bytes())
	mu.Unlock()
	if len(data) < 3 || data[0] != 0x16 || data[1] != 0x03 {
		t.Fatalf("capture starts with % x, want a TLS handshake record (16 03 ..)", data[:min(len(data), 3)])
	}
	secrets := map[string][]byte{
		"route name":     []byte(tbl.Routes[0].Service),
		"host name":      []byte("secret-host.example.test"),
		"private key":    keyDER,
		"PEM header":     []byte("PRIVATE KEY"),
		"challenge data": []byte("key-authorization-value"),
		"the secret":     []byte("one secret for the whole cluster"),
	}
	for what, s := range secrets {
		if bytes.Contains(data, s) {
			t.Errorf("the capture (%d bytes) contains the %s", len(data), what)
		}
	}
}

// A challenge put on the controller is served by the edge as soon as
// PutChallenge returns; an edge that never acknowledges is named in the log
// after the timeout.
func TestChallengeReachesEdgesBeforeReturn(t *testing.T) {
	sec := testSecret(t, "one secret for the whole cluster")
	const ackTimeout = 2 * time.Second
	srv := startServer(t, sec, "ctl", func(c *ServerConfig) { c.AckTimeout = ackTimeout })
	srv.SetTable(testTable(time.Now(), "a.example.test"))
	e := startEdge(t, sec, []string{srv.addr}, nil)
	waitEdge(t, e.Edge, "the first table", hasHost(e.Edge, "a.example.test"))

	tokenCert, _ := testCert(t, "a.example.test", time.Now())
	srv.PutChallenge(context.Background(), certs.HTTP01Key("tok-1"), []byte("tok-1.thumbprint"))
	srv.PutChallenge(context.Background(), certs.TLSALPN01Key("a.example.test"), tokenCert.PEM)

	h := e.HTTPHandler(http.NotFoundHandler())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "http://a.example.test"+certs.HTTP01Path+"tok-1", nil))
	if rec.Code != 200 || rec.Body.String() != "tok-1.thumbprint" {
		t.Errorf("HTTP-01 answer: %d %q", rec.Code, rec.Body.String())
	}
	if _, err := e.TLSConfig().GetCertificate(&tls.ClientHelloInfo{ServerName: "a.example.test", SupportedProtos: []string{"acme-tls/1"}}); err != nil {
		t.Errorf("TLS-ALPN-01 answer: %v", err)
	}

	srv.DeleteChallenge(certs.HTTP01Key("tok-1"))
	waitEdge(t, e.Edge, "the challenge withdrawn", func() bool {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "http://a.example.test"+certs.HTTP01Path+"tok-1", nil))
		return rec.Code == http.StatusNotFound
	})

	// A peer that holds the secret, says hello and never acknowledges.
	auth, err := newAuthority(sec)
	if err != nil {
		t.Fatal(err)
	}
	mute, err := tls.Dial("tcp", srv.addr, auth.clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	if err := writeFrame(mute, hello{Edge: "mute-edge"}); err != nil {
		t.Fatal(err)
	}
	var first update
	if err := readFrame(mute, &first); err != nil || !first.Full {
		t.Fatalf("first frame %+v, %v: want the full state", first, err)
	}
	start := time.Now()
	srv.PutChallenge(context.Background(), certs.HTTP01Key("tok-2"), []byte("tok-2.thumbprint"))
	// The wait is at least the timeout; no upper bound is asserted.
	if d := time.Since(start); d < ackTimeout {
		t.Errorf("PutChallenge returned after %v, before the %v timeout, though an edge never confirmed", d, ackTimeout)
	}
	logs := waitLog(t, srv.logs, "did not confirm the ACME challenge", "mute-edge")
	if strings.Contains(logs, `"edge":["edge-`) {
		t.Error("the edge that confirmed is named among those that did not")
	}
}

// An edge restarted while every controller is down serves its saved state;
// a damaged file or one from another secret is reported and ignored.
func TestSavedState(t *testing.T) {
	sec := testSecret(t, "one secret for the whole cluster")
	srv := startServer(t, sec, "ctl", nil)
	srv.SetTable(testTable(time.Now(), "a.example.test"))
	cert, _ := testCert(t, "a.example.test", time.Now().Add(-time.Hour))
	srv.SetCerts([]Cert{cert})
	file := t.TempDir() + "/edge-state"
	first := startEdge(t, sec, []string{srv.addr}, func(c *EdgeConfig) { c.StateFile = file })
	waitEdge(t, first.Edge, "the certificate", func() bool {
		_, err := serveName(first.Edge, "a.example.test")
		return err == nil
	})
	first.stop()
	srv.stop()

	restarted := startEdge(t, sec, []string{srv.addr}, func(c *EdgeConfig) { c.StateFile = file })
	if !hasHost(restarted.Edge, "a.example.test")() {
		t.Fatal("the restarted edge does not serve the saved table")
	}
	if _, err := serveName(restarted.Edge, "a.example.test"); err != nil {
		t.Fatalf("the restarted edge does not serve the saved certificate: %v", err)
	}
	if st := restarted.Status(); !st.Ready || !strings.Contains(st.From, "ctl") || st.Confirmed.IsZero() {
		t.Errorf("status %+v: want ready, from ctl, with the saved time", st)
	}
	saved, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(saved, []byte("a.example.test")) || bytes.Contains(saved, []byte("PRIVATE KEY")) {
		t.Error("the state file holds plain text")
	}

	flipped := bytes.Clone(saved)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name   string
		data   []byte
		secret string
	}{
		{name: "damaged", data: flipped, secret: "one secret for the whole cluster"},
		{name: "another secret", data: saved, secret: "another cluster's secret"},
		{name: "not a state file", data: []byte("{}"), secret: "one secret for the whole cluster"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := t.TempDir() + "/edge-state"
			if err := os.WriteFile(f, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			e := startEdge(t, testSecret(t, tt.secret), nil, func(c *EdgeConfig) { c.StateFile = f })
			if e.Table() != nil {
				t.Error("a table was loaded from an unusable file")
			}
			waitLog(t, e.logs, "ignored the saved edge state", testSetting, f)
		})
	}
}

// A controller that stops talking without closing the connection (a node
// cut off) is dropped after Silence; the edge keeps its table.
func TestSilentControllerDropped(t *testing.T) {
	sec := testSecret(t, "one secret for the whole cluster")
	auth, err := newAuthority(sec)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	hold := make(chan struct{})
	defer close(hold)
	go func() {
		c, err := tls.NewListener(ln, auth.serverConfig()).Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var h hello
		if readFrame(c, &h) != nil {
			return
		}
		writeFrame(c, &update{Seq: 1, Full: true, Controller: "silent",
			Table: NewTable(testTable(time.Now(), "a.example.test"), time.Now().UnixNano())})
		<-hold // then nothing: no heartbeat, no close
	}()

	const silence = time.Second
	start := time.Now()
	e := startEdge(t, sec, []string{ln.Addr().String()}, func(c *EdgeConfig) { c.Silence = silence })
	waitEdge(t, e.Edge, "the silent controller's state", hasHost(e.Edge, "a.example.test"))
	waitEdge(t, e.Edge, "the silent controller dropped", func() bool {
		st := e.Status()
		return len(st.Controllers) == 1 && !st.Controllers[0].Connected && st.Controllers[0].Error != ""
	})
	// Dropped no sooner than Silence after the state arrived (no upper bound:
	// the machine may be slow).
	if d := time.Since(start); d < silence {
		t.Errorf("dropped after %v, before the %v of silence", d, silence)
	}
	if !hasHost(e.Edge, "a.example.test")() {
		t.Error("the edge dropped its table with the controller")
	}
}

// A controller with no edge connected (one that has just started) holds a
// challenge until the first edge connects and confirms it, so that the CA
// does not validate before any edge knows the answer; with no edge before
// the timeout, it says so.
func TestChallengeWaitsForFirstEdge(t *testing.T) {
	sec := testSecret(t, "one secret for the whole cluster")
	srv := startServer(t, sec, "ctl", func(c *ServerConfig) { c.AckTimeout = time.Minute }) // a hang guard
	srv.SetTable(testTable(time.Now(), "a.example.test"))
	key := certs.HTTP01Key("tok-1")
	returned := make(chan struct{})
	go func() {
		srv.PutChallenge(context.Background(), key, []byte("tok-1.thumbprint"))
		close(returned)
	}()
	deadline := time.After(time.Minute)
	for {
		srv.mu.Lock()
		_, put := srv.challenges[key]
		changed := srv.changed
		srv.mu.Unlock()
		if put {
			break
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatal("PutChallenge never stored the challenge")
		}
	}
	select {
	case <-returned:
		t.Fatal("PutChallenge returned with no edge connected")
	default:
	}

	e := startEdge(t, sec, []string{srv.addr}, nil)
	select {
	case <-returned:
	case <-time.After(time.Minute):
		t.Fatal("PutChallenge did not return once an edge connected")
	}
	rec := httptest.NewRecorder()
	e.HTTPHandler(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("GET", "http://a.example.test"+certs.HTTP01Path+"tok-1", nil))
	if rec.Code != 200 || rec.Body.String() != "tok-1.thumbprint" {
		t.Errorf("when PutChallenge returned, the first edge answered %d %q, want the key authorization", rec.Code, rec.Body.String())
	}
	if strings.Contains(srv.logs.String(), "no edge connected") {
		t.Error("the controller warned that no edge confirmed, though one did")
	}

	alone := startServer(t, sec, "alone", func(c *ServerConfig) { c.AckTimeout = 100 * time.Millisecond })
	alone.PutChallenge(context.Background(), certs.HTTP01Key("tok-2"), []byte("tok-2.thumbprint"))
	waitLog(t, alone.logs, "no edge connected and confirmed the ACME challenge in time", "tok-2+http-01")
}
