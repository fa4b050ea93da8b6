package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// env builds a getenv from pairs, with a writable data dir by default.
func env(t *testing.T, kv ...string) func(string) string {
	t.Helper()
	m := map[string]string{"INGRESS_DATA_DIR": t.TempDir()}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestConfigDefaults(t *testing.T) {
	values, _, err := loadSettings("test", nil, env(t), new(bytes.Buffer))
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseConfig(values, roleServe)
	if err != nil {
		t.Fatalf("defaults must be valid: %v", err)
	}
	if c.HTTPAddr != ":80" || c.HTTPSAddr != ":443" || c.AdminAddr != "127.0.0.1:8080" ||
		c.LabelPrefix != "ingress." || c.Cache != "dir" || c.ShutdownGrace != 30*time.Second ||
		c.LogFormat != "json" || c.LogLevel.String() != "info" ||
		c.ACMECA != "https://acme-v02.api.letsencrypt.org/directory" {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}

func TestConfigFlagsOverrideEnv(t *testing.T) {
	values, rest, err := loadSettings("test",
		[]string{"--ingress-http-addr=127.0.0.1:8081", "--ingress-network", "edge, other", "--ingress-trusted-proxies=10.0.0.0/8,192.0.2.1"},
		env(t, "INGRESS_HTTP_ADDR", ":9999", "INGRESS_NETWORK", "ignored"), new(bytes.Buffer))
	if err != nil || len(rest) != 0 {
		t.Fatal(err, rest)
	}
	c, err := parseConfig(values, roleServe)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:8081" {
		t.Errorf("HTTPAddr = %q, want the flag's value", c.HTTPAddr)
	}
	if strings.Join(c.Networks, "|") != "edge|other" {
		t.Errorf("Networks = %q", c.Networks)
	}
	if len(c.TrustedProxies) != 2 || c.TrustedProxies[1].String() != "192.0.2.1/32" {
		t.Errorf("TrustedProxies = %v", c.TrustedProxies)
	}
}

func TestConfigReportsEveryProblem(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "roots.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	tests := []struct {
		name string
		kv   []string
		want []string // each must appear in the error
	}{
		{name: "bad listener", kv: []string{"INGRESS_HTTP_ADDR", "nonsense"},
			want: []string{`INGRESS_HTTP_ADDR="nonsense"`, "use host:port"}},
		{name: "bad port", kv: []string{"INGRESS_HTTPS_ADDR", ":99999"},
			want: []string{"INGRESS_HTTPS_ADDR", "0 to 65535"}},
		{name: "same address twice", kv: []string{"INGRESS_HTTP_ADDR", ":8000", "INGRESS_HTTPS_ADDR", ":8000"},
			want: []string{"INGRESS_HTTPS_ADDR", "same address as INGRESS_HTTP_ADDR"}},
		{name: "missing roots", kv: []string{"INGRESS_ACME_CA_ROOTS", "/does/not/exist.pem"},
			want: []string{"INGRESS_ACME_CA_ROOTS", "no such file", "PEM file"}},
		{name: "roots not PEM", kv: []string{"INGRESS_ACME_CA_ROOTS", notPEM},
			want: []string{"INGRESS_ACME_CA_ROOTS", "no PEM certificate"}},
		{name: "http CA", kv: []string{"INGRESS_ACME_CA", "http://ca.example/dir"},
			want: []string{"INGRESS_ACME_CA", "https://"}},
		{name: "unknown challenge type", kv: []string{"INGRESS_ACME_CHALLENGE", "dns-01"},
			want: []string{`INGRESS_ACME_CHALLENGE="dns-01"`, "http-01 or tls-alpn-01"}},
		{name: "challenge types as a list", kv: []string{"INGRESS_ACME_CHALLENGE", "http-01,tls-alpn-01"},
			want: []string{"INGRESS_ACME_CHALLENGE", "leave it empty for both"}},
		{name: "everything at once", kv: []string{
			"INGRESS_HTTP_ADDR", "nonsense", "INGRESS_LOG_LEVEL", "loud", "INGRESS_LOG_FORMAT", "xml",
			"INGRESS_SHUTDOWN_GRACE", "soon", "INGRESS_CACHE", "redis", "INGRESS_TRUSTED_PROXIES", "10.0.0.0/99",
			"INGRESS_ROUTES_FILE", "/no/such/routes.yml", "INGRESS_LABEL_PREFIX", "ingress", "INGRESS_ACME_EMAIL", "nobody",
			"INGRESS_CERTS_DIR", "/no/such/dir"},
			want: []string{"INGRESS_HTTP_ADDR", "INGRESS_LOG_LEVEL", "INGRESS_LOG_FORMAT", "INGRESS_SHUTDOWN_GRACE",
				"INGRESS_CACHE", "INGRESS_TRUSTED_PROXIES", "INGRESS_ROUTES_FILE", "INGRESS_LABEL_PREFIX",
				"INGRESS_ACME_EMAIL", "INGRESS_CERTS_DIR", "nothing was started"}},
		{name: "swarm cache without key", kv: []string{"INGRESS_CACHE", "swarm", "INGRESS_CACHE_KEY_FILE", "/no/key"},
			want: []string{"INGRESS_CACHE_KEY_FILE", "docker secret create"}},
		{name: "missing not-found page", kv: []string{"INGRESS_NOT_FOUND_PAGE", "/no/such/404.html"},
			want: []string{"INGRESS_NOT_FOUND_PAGE", "no such file", "mount the page"}},
		{name: "not-found page is a directory", kv: []string{"INGRESS_NOT_FOUND_PAGE", "/"},
			want: []string{"INGRESS_NOT_FOUND_PAGE", "a file of at most 1 MiB"}},
		{name: "unwritable data dir", kv: []string{"INGRESS_DATA_DIR", "/proc/no-such-dir"},
			want: []string{"INGRESS_DATA_DIR", "writable volume"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			values, _, err := loadSettings("test", nil, env(t, tc.kv...), new(bytes.Buffer))
			if err != nil {
				t.Fatal(err)
			}
			_, err = parseConfig(values, roleServe)
			if err == nil {
				t.Fatal("invalid settings were accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestConfigACMEChallenge: each challenge type is accepted by the roles that
// order certificates (any case), and a bad one is refused by both.
func TestConfigACMEChallenge(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef"), 0o600)
	for _, r := range []role{roleServe, roleController} {
		for _, tc := range []struct{ value, want string }{{"", ""}, {"http-01", "http-01"}, {"TLS-ALPN-01", "tls-alpn-01"}} {
			values, _, err := loadSettings("test", nil, env(t, "INGRESS_ACME_CHALLENGE", tc.value, "INGRESS_CONTROL_SECRET_FILE", secret), new(bytes.Buffer))
			if err != nil {
				t.Fatal(err)
			}
			c, err := parseConfig(values, r)
			if err != nil {
				t.Fatalf("role %d, INGRESS_ACME_CHALLENGE=%q: %v", r, tc.value, err)
			}
			if c.ACMEChallenge != tc.want {
				t.Errorf("role %d, INGRESS_ACME_CHALLENGE=%q: ACMEChallenge %q, want %q", r, tc.value, c.ACMEChallenge, tc.want)
			}
		}
		values, _, _ := loadSettings("test", nil, env(t, "INGRESS_ACME_CHALLENGE", "http01", "INGRESS_CONTROL_SECRET_FILE", secret), new(bytes.Buffer))
		if _, err := parseConfig(values, r); err == nil || !strings.Contains(err.Error(), `INGRESS_ACME_CHALLENGE="http01"`) {
			t.Errorf("role %d accepted INGRESS_ACME_CHALLENGE=http01 or did not name it: %v", r, err)
		}
	}
}

func TestCheckIgnoresServeOnlySettings(t *testing.T) {
	values, _, _ := loadSettings("test", nil, env(t, "INGRESS_HTTP_ADDR", "nonsense", "INGRESS_DATA_DIR", "/proc/x"), new(bytes.Buffer))
	if _, err := parseConfig(values, roleCheck); err != nil {
		t.Fatalf("check must not validate listeners or the data dir: %v", err)
	}
}

// TestBadSettingsBindNothing runs `serve` with bad settings: it must fail,
// name the settings, and never call listen.
func TestBadSettingsBindNothing(t *testing.T) {
	listened := false
	listen := func(network, addr string) (net.Listener, error) {
		listened = true
		return nil, nil
	}
	var stdout, stderr bytes.Buffer
	err := serveWith(context.Background(), nil,
		env(t, "INGRESS_HTTP_ADDR", "nonsense", "INGRESS_ACME_CA_ROOTS", "/missing/roots.pem"), &stderr, &stdout, listen)
	if err == nil {
		t.Fatal("serve accepted bad settings")
	}
	for _, w := range []string{"INGRESS_HTTP_ADDR", "INGRESS_ACME_CA_ROOTS"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %s: %v", w, err)
		}
	}
	if listened {
		t.Fatal("a listener was bound although the settings are invalid")
	}
}

func TestBindAllIsAllOrNothing(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free, _ := net.Listen("tcp", "127.0.0.1:0")
	freeAddr := free.Addr().String()
	free.Close()

	_, err = bindAll(net.Listen, freeAddr, busy.Addr().String())
	if err == nil || !strings.Contains(err.Error(), busy.Addr().String()) {
		t.Fatalf("bindAll on a busy port: err = %v", err)
	}
	// The first listener must have been closed again: the port is free.
	ln, err := net.Listen("tcp", freeAddr)
	if err != nil {
		t.Fatalf("bindAll left %s bound after failing: %v", freeAddr, err)
	}
	ln.Close()
}

func TestRunCommands(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"version"}, env(t), &out, &errOut); err != nil || !strings.HasPrefix(out.String(), "ingress ") {
		t.Fatalf("version: %v %q", err, out.String())
	}
	if err := run(context.Background(), []string{"frobnicate"}, env(t), &out, &errOut); err == nil || !strings.Contains(err.Error(), "frobnicate") {
		t.Fatalf("unknown command: %v", err)
	}
}
