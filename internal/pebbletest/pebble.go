// Package pebbletest runs a real Pebble ACME server on loopback for tests.
//
// Pebble validates challenges by connecting to 127.0.0.1 on the HTTPPort
// (http-01) and TLSPort (tls-alpn-01) the test chooses: an in-test DNS server
// answers 127.0.0.1 for every name. The Pebble binary is built once from the
// module in go.mod and cached under os.UserCacheDir.
//
//	p := pebbletest.New(t, pebbletest.Config{HTTPPort: httpPort, TLSPort: tlsPort})
//	client := &acme.Client{DirectoryURL: p.DirectoryURL}   // trust p.RootsFile
//	... p.Orders(), p.Validations(), p.IssuerRoots(t)
package pebbletest

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Config says where Pebble sends its validation requests.
type Config struct {
	HTTPPort int  // port on Target Pebble connects to for http-01; 0: an unused port
	TLSPort  int  // port on Target Pebble connects to for tls-alpn-01; 0: an unused port
	Stopped  bool // do not start Pebble in New; call Start later (a CA that is down)
	// Listen is the address Pebble's listeners bind (and its certificate
	// names); the zero value is 127.0.0.1. Another address of this machine
	// (a test bridge's) lets containers reach the CA.
	Listen netip.Addr
	// Target is the address Pebble's DNS gives every name, where validations
	// go; the zero value is 127.0.0.1.
	Target netip.Addr
}

// Pebble is one Pebble server. Stop and Start keep its ports and config, so a
// test can take the CA down and bring it back; Pebble keeps no state across
// a restart (accounts, orders and its issuing root are new).
type Pebble struct {
	DirectoryURL string // https://<Listen>:<port>/dir
	RootsFile    string // PEM of the certificate Pebble's listeners present: trust it for DirectoryURL

	t        testing.TB
	bin      string
	dir      string
	mgmtAddr string
	dnsAddr  string
	roots    *x509.CertPool // for RootsFile

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the current process has exited and its output is read
	orders  int           // "Added order" lines across every run
	valid   Validations   // validation lines across every run
	dirGets int           // "GET /dir" lines across every run
	seen    chan struct{} // closed and replaced whenever a counted line is read
	tail    []string      // last lines of output, logged when the test fails
}

// New configures Pebble (and its DNS server) and starts it unless
// cfg.Stopped. Everything stops in t.Cleanup.
func New(t testing.TB, cfg Config) *Pebble {
	t.Helper()
	dir := t.TempDir()
	p := &Pebble{t: t, bin: binary(t), dir: dir, seen: make(chan struct{})}

	if !cfg.Listen.IsValid() {
		cfg.Listen = loopback
	}
	if !cfg.Target.IsValid() {
		cfg.Target = loopback
	}
	certPEM, keyPEM, pool := selfSigned(t, cfg.Listen)
	p.roots = pool
	p.RootsFile = filepath.Join(dir, "cert.pem")
	keyFile := filepath.Join(dir, "key.pem")
	writeFile(t, p.RootsFile, certPEM)
	writeFile(t, keyFile, keyPEM)

	p.dnsAddr = startDNS(t, cfg.Target)
	listen := freeAddr(t, cfg.Listen)
	p.mgmtAddr = freeAddr(t, cfg.Listen)
	p.DirectoryURL = "https://" + listen + "/dir"
	if cfg.HTTPPort == 0 {
		cfg.HTTPPort = freePort(t)
	}
	if cfg.TLSPort == 0 {
		cfg.TLSPort = freePort(t)
	}

	var c struct {
		Pebble map[string]any `json:"pebble"`
	}
	c.Pebble = map[string]any{
		"listenAddress":           listen,
		"managementListenAddress": p.mgmtAddr,
		"certificate":             p.RootsFile,
		"privateKey":              keyFile,
		"httpPort":                cfg.HTTPPort,
		"tlsPort":                 cfg.TLSPort,
		"ocspResponderURL":        "",
		"keyAlgorithm":            "ecdsa",
		"retryAfter":              map[string]int{"authz": 1, "order": 1},
	}
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("pebbletest: marshal config: %v", err)
	}
	writeFile(t, filepath.Join(dir, "pebble.json"), data)

	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			p.mu.Lock()
			t.Logf("pebbletest: last Pebble output:\n%s", strings.Join(p.tail, "\n"))
			p.mu.Unlock()
		}
	})
	if !cfg.Stopped {
		p.Start()
	}
	return p
}

// Start starts Pebble (again) and returns once its directory answers.
func (p *Pebble) Start() {
	p.t.Helper()
	p.mu.Lock()
	if p.cmd != nil {
		p.mu.Unlock()
		p.t.Fatal("pebbletest: Start: Pebble is already running")
	}
	cmd := exec.Command(p.bin, "-config", filepath.Join(p.dir, "pebble.json"), "-dnsserver", p.dnsAddr)
	cmd.Env = append(os.Environ(),
		"PEBBLE_VA_NOSLEEP=1",
		"PEBBLE_WFE_NONCEREJECT=0",
		"PEBBLE_VA_ALWAYS_VALID=0",
		"PEBBLE_AUTHZREUSE=0",
	)
	out, err := cmd.StdoutPipe()
	if err != nil {
		p.mu.Unlock()
		p.t.Fatalf("pebbletest: stdout pipe: %v", err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		p.t.Fatalf("pebbletest: start %s: %v", p.bin, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()

	go func() {
		p.read(out)
		_ = cmd.Wait()
		close(exited)
	}()
	p.waitReady(exited)
}

// Stop stops Pebble and waits for it to exit. Stopping a stopped Pebble does nothing.
func (p *Pebble) Stop() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Orders is the number of orders Pebble has accepted since New, across restarts.
// It first makes sure Pebble's output up to now has been read.
func (p *Pebble) Orders() int {
	p.t.Helper()
	p.sync()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.orders
}

// Validations is what Pebble's log says about its validations.
type Validations struct {
	Valid   int // authorizations a completed challenge made valid
	Invalid int // authorizations a failed challenge made invalid
	// HTTP01Requests counts Pebble's HTTP-01 validation requests (it makes
	// several per challenge). Pebble logs none for TLS-ALPN-01: an
	// authorization made valid without any HTTP-01 request was validated
	// over TLS-ALPN-01 (or DNS-01, which an ingress does not answer).
	HTTP01Requests int
}

// Validations counts Pebble's validations since New, across restarts. It
// first makes sure Pebble's output up to now has been read.
func (p *Pebble) Validations() Validations {
	p.t.Helper()
	p.sync()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.valid
}

// IssuerRoots returns the root that signs the certificates of the running
// Pebble (it changes on every Start), from the management API.
func (p *Pebble) IssuerRoots(t testing.TB) *x509.CertPool {
	t.Helper()
	body := p.get(t, "https://"+p.mgmtAddr+"/roots/0")
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(body) {
		t.Fatalf("pebbletest: /roots/0 returned no PEM certificate: %q", body)
	}
	return pool
}

// HTTPClient returns a client that trusts Pebble's own listeners.
func (p *Pebble) HTTPClient() *http.Client {
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.roots}},
	}
}

func (p *Pebble) get(t testing.TB, url string) []byte {
	t.Helper()
	c := p.HTTPClient()
	defer c.CloseIdleConnections()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("pebbletest: GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pebbletest: GET %s: status %d, %v", url, resp.StatusCode, err)
	}
	return body
}

// read consumes Pebble's output, counting orders and validations.
func (p *Pebble) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		p.mu.Lock()
		p.tail = append(p.tail, line)
		if len(p.tail) > 200 {
			p.tail = p.tail[len(p.tail)-200:]
		}
		counted := false
		if strings.Contains(line, "Added order") {
			p.orders++
			counted = true
		}
		switch {
		case strings.Contains(line, " set VALID by completed challenge "):
			p.valid.Valid++
		case strings.Contains(line, " set INVALID by completed challenge "):
			p.valid.Invalid++
		case strings.Contains(line, "Attempting to validate w/ HTTP: "):
			p.valid.HTTP01Requests++
		}
		if strings.Contains(line, "GET /dir -> calling handler()") {
			p.dirGets++
			counted = true
		}
		if counted {
			close(p.seen)
			p.seen = make(chan struct{})
		}
		p.mu.Unlock()
	}
}

// sync fetches the directory and waits until Pebble's log line for that
// request has been read, so every line Pebble wrote before it is counted.
// A stopped Pebble has nothing more to say.
func (p *Pebble) sync() {
	p.mu.Lock()
	running, before := p.cmd != nil, p.dirGets
	p.mu.Unlock()
	if !running {
		return
	}
	p.get(p.t, p.DirectoryURL)
	deadline := time.After(10 * time.Second)
	for {
		p.mu.Lock()
		done, seen := p.dirGets > before, p.seen
		p.mu.Unlock()
		if done {
			return
		}
		select {
		case <-seen:
		case <-deadline:
			p.t.Fatal("pebbletest: Pebble's log line for GET /dir never arrived")
		}
	}
}

// waitReady returns once the directory answers; it fails the test if Pebble
// exits or does not answer within 30s.
func (p *Pebble) waitReady(exited <-chan struct{}) {
	p.t.Helper()
	c := p.HTTPClient()
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.DirectoryURL, nil)
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			p.mu.Lock()
			tail := strings.Join(p.tail, "\n")
			p.mu.Unlock()
			p.t.Fatalf("pebbletest: Pebble exited at start:\n%s", tail)
		case <-ctx.Done():
			p.t.Fatal("pebbletest: Pebble's directory did not answer within 30s")
		case <-tick.C:
		}
	}
}

func writeFile(t testing.TB, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatalf("pebbletest: %v", err)
	}
}

// loopback is where Pebble listens and sends validations by default.
var loopback = netip.MustParseAddr("127.0.0.1")

// freeAddr returns <addr>:<port> for a port of addr that was free a moment ago.
func freeAddr(t testing.TB, addr netip.Addr) string {
	t.Helper()
	l, err := net.Listen("tcp4", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatalf("pebbletest: find a free port on %s: %v", addr, err)
	}
	defer l.Close()
	return l.Addr().String()
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pebbletest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
