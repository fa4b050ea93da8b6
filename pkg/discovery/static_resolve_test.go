package discovery

import (
	"bufio"
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// fakeLookup answers from a table and records what it was asked.
type fakeLookup struct {
	mu      sync.Mutex
	answers map[string][]netip.Addr
	calls   []string // "network host"
}

func (f *fakeLookup) lookup(_ context.Context, network, host string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, network+" "+host)
	a, ok := f.answers[host]
	if !ok {
		return nil, errors.New("no such host")
	}
	return a, nil
}

func addrPorts(s ...string) []netip.AddrPort {
	out := make([]netip.AddrPort, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddrPort(a)
	}
	return out
}

func TestResolveStatic(t *testing.T) {
	labels := map[string]string{"ingress.host": "x.example.com"}
	tests := []struct {
		name      string
		upstreams []string
		answers   map[string][]netip.Addr
		want      []netip.AddrPort // nil: the entry is dropped
		wantErr   string
		wantCalls []string
	}{
		{
			name:      "IPv4 literals, no lookup, sorted",
			upstreams: []string{"192.0.2.11:80", "192.0.2.10:80"},
			want:      addrPorts("192.0.2.10:80", "192.0.2.11:80"),
		},
		{
			name:      "a name gives every IPv4 address it has, IPv6 ignored, looked up once",
			upstreams: []string{"backend.lan:8080", "backend.lan:8081"},
			answers:   map[string][]netip.Addr{"backend.lan": {addr("2001:db8::1"), addr("10.0.0.2"), addr("::ffff:10.0.0.1")}},
			want:      addrPorts("10.0.0.1:8080", "10.0.0.1:8081", "10.0.0.2:8080", "10.0.0.2:8081"),
			wantCalls: []string{"ip4 backend.lan"},
		},
		{
			name:      "localhost answered with ::1 only becomes 127.0.0.1",
			upstreams: []string{"localhost:9000"},
			answers:   map[string][]netip.Addr{"localhost": {addr("::1")}},
			want:      addrPorts("127.0.0.1:9000"),
			wantCalls: []string{"ip4 localhost"},
		},
		{
			name:      "localhost that does not resolve becomes 127.0.0.1",
			upstreams: []string{"app.localhost:9000"},
			want:      addrPorts("127.0.0.1:9000"),
			wantCalls: []string{"ip4 app.localhost"},
		},
		{
			name:      "a name with IPv6 addresses only",
			upstreams: []string{"v6only.lan:80"},
			answers:   map[string][]netip.Addr{"v6only.lan": {addr("2001:db8::1")}},
			wantErr:   `upstream "v6only.lan:80": v6only.lan has no IPv4 address (IPv6 is never used)`,
			wantCalls: []string{"ip4 v6only.lan"},
		},
		{
			name:      "a name that does not resolve drops the whole entry",
			upstreams: []string{"192.0.2.1:80", "gone.lan:80"},
			wantErr:   `upstream "gone.lan:80": look up gone.lan: no such host`,
			wantCalls: []string{"ip4 gone.lan"},
		},
		{
			name:      "an IPv6 literal is rejected",
			upstreams: []string{"[::1]:80"},
			wantErr:   `upstream "[::1]:80" looks like an IPv6 address: upstreams are IPv4 only`,
		},
		{
			name:      "an IPv4-mapped IPv6 literal is rejected",
			upstreams: []string{"[::ffff:192.0.2.1]:80"},
			wantErr:   "upstreams are IPv4 only",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeLookup{answers: tc.answers}
			entries := []StaticEntry{
				{Name: "svc", Upstreams: tc.upstreams, Labels: labels},
				{Name: "ok", Upstreams: []string{"192.0.2.99:80"}, Labels: labels},
			}
			got, errs := ResolveStatic(t.Context(), entries, f.lookup)
			want := []StaticService{{Name: "ok", Upstreams: addrPorts("192.0.2.99:80"), Labels: labels}}
			if tc.want != nil {
				want = append([]StaticService{{Name: "svc", Upstreams: tc.want, Labels: labels}}, want...)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("services:\n got %+v\nwant %+v", got, want)
			}
			var wantErrs []route.Error
			if tc.wantErr != "" {
				wantErrs = []route.Error{{Service: "svc", Label: "upstreams", Error: tc.wantErr}}
			}
			if len(errs) != len(wantErrs) || (len(errs) == 1 && (errs[0].Service != "svc" || errs[0].Label != "upstreams" ||
				!strings.Contains(errs[0].Error, tc.wantErr))) {
				t.Errorf("errors: got %+v, want %+v", errs, wantErrs)
			}
			if !reflect.DeepEqual(f.calls, tc.wantCalls) {
				t.Errorf("lookups: got %q, want %q", f.calls, tc.wantCalls)
			}
		})
	}
}

// TestResolveStaticLocalhost resolves "localhost:PORT" with the real
// resolver, which reads /etc/hosts: it must give 127.0.0.1:PORT only.
func TestResolveStaticLocalhost(t *testing.T) {
	t.Logf("/etc/hosts localhost lines: %q", localhostLines(t))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	got, errs := ResolveStatic(ctx, []StaticEntry{{Name: "app", Upstreams: []string{"localhost:8080"},
		Labels: map[string]string{"ingress.host": "app.example.com"}}}, nil)
	if len(errs) != 0 || len(got) != 1 || !reflect.DeepEqual(got[0].Upstreams, addrPorts("127.0.0.1:8080")) {
		t.Fatalf("got %+v, errors %+v; want upstreams [127.0.0.1:8080]", got, errs)
	}
}

const hostsChildEnv = "DISCOVERY_TEST_HOSTS_CHILD"

// TestResolveStaticLocalhostV6First proves, with the real resolver, that
// localhost becomes 127.0.0.1 when /etc/hosts lists "::1 localhost" first,
// and when it lists only ::1. /etc/hosts is never changed: the test runs
// itself again in a private mount namespace (unshare -m, needs root) where
// a temporary file is bind-mounted over /etc/hosts.
func TestResolveStaticLocalhostV6First(t *testing.T) {
	if os.Getenv(hostsChildEnv) == "1" {
		lines := localhostLines(t)
		if len(lines) == 0 || !strings.HasPrefix(lines[0], "::1") {
			t.Fatalf("child: /etc/hosts should list ::1 localhost first, has %q", lines)
		}
		TestResolveStaticLocalhost(t)
		return
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil || os.Geteuid() != 0 {
		t.Skip("needs root and unshare(1) to mount a private /etc/hosts")
	}
	for name, hosts := range map[string]string{
		"v6 first": "::1 localhost ip6-localhost ip6-loopback\n127.0.0.1 localhost\n",
		"v6 only":  "::1 localhost ip6-localhost ip6-loopback\n",
	} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "hosts")
			if err := os.WriteFile(file, []byte(hosts), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, unshare, "-m", "sh", "-c", `mount --bind "$0" /etc/hosts && exec "$@"`,
				file, os.Args[0], "-test.run", "^TestResolveStaticLocalhostV6First$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), hostsChildEnv+"=1")
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "--- PASS: TestResolveStaticLocalhostV6First") {
				t.Fatalf("child failed: %v\n%s", err, out)
			}
			t.Logf("child:\n%s", out)
		})
	}
}

// localhostLines returns the /etc/hosts lines that name localhost, in order.
func localhostLines(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("/etc/hosts")
	if err != nil {
		t.Fatalf("read /etc/hosts: %v", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		for _, name := range fields[min(1, len(fields)):] {
			if name == "localhost" && !strings.HasPrefix(fields[0], "#") {
				lines = append(lines, sc.Text())
			}
		}
	}
	return lines
}
