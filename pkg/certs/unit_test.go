package certs

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

// jws is a flattened JWS as the ACME client sends it, with payload v.
func jws(t testing.TB, v any) string {
	t.Helper()
	p, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`{"protected":"e30","payload":%q,"signature":"c2ln"}`, base64.RawURLEncoding.EncodeToString(p))
}

func newOrder(names ...string) map[string]any {
	var ids []map[string]string
	for _, n := range names {
		ids = append(ids, map[string]string{"type": "dns", "value": n})
	}
	return map[string]any{"identifiers": ids}
}

// TestGuard: a new order for a name the policy rejects never leaves the
// process; every other request passes through unchanged.
func TestGuard(t *testing.T) {
	var got atomic.Value
	var hits atomic.Int32
	ca := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		var body strings.Builder
		_, _ = fmt.Fprint(&body, r.Method, " ")
		buf := make([]byte, 4096)
		n, _ := r.Body.Read(buf)
		body.Write(buf[:n])
		got.Store(body.String())
	}))
	t.Cleanup(ca.Close)
	allowed := map[string]bool{"ok.example.test": true, "ok2.example.test": true}
	c := &http.Client{Transport: &guard{next: http.DefaultTransport, allow: func(names []string) error {
		for _, n := range names {
			if !allowed[n] {
				return fmt.Errorf("no route for %q", n)
			}
		}
		return nil
	}}}

	tests := []struct {
		name    string
		method  string
		body    string
		refused bool
	}{
		{name: "allowed order", method: http.MethodPost, body: jws(t, newOrder("ok.example.test", "ok2.example.test"))},
		{name: "order with one unrouted name", method: http.MethodPost, body: jws(t, newOrder("ok.example.test", "evil.example.test")), refused: true},
		{name: "order for an unrouted name", method: http.MethodPost, body: jws(t, newOrder("evil.example.test")), refused: true},
		{name: "other ACME request", method: http.MethodPost, body: jws(t, map[string]any{"status": "deactivated"})},
		{name: "POST-as-GET", method: http.MethodPost, body: `{"protected":"e30","payload":"","signature":"c2ln"}`},
		{name: "not JSON", method: http.MethodPost, body: "hello"},
		{name: "GET", method: http.MethodGet},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := hits.Load()
			req, err := http.NewRequest(tc.method, ca.URL+"/order", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Do(req)
			if tc.refused {
				if err == nil {
					resp.Body.Close()
					t.Fatal("request passed, want it refused")
				}
				if hits.Load() != before {
					t.Fatal("a refused order reached the CA")
				}
				return
			}
			if err != nil {
				t.Fatalf("request refused: %v", err)
			}
			resp.Body.Close()
			if want := tc.method + " " + tc.body; got.Load() != want {
				t.Errorf("CA received %q, want %q", got.Load(), want)
			}
		})
	}
}

// FuzzOrderNames: orderNames returns exactly the identifiers of a new-order
// payload and never panics on anything else.
func FuzzOrderNames(f *testing.F) {
	f.Add("a.example.test,b.example.test", `{"payload":"e30"}`)
	f.Add("", "not json")
	f.Add("x", `{"payload":"!!"}`)
	f.Fuzz(func(t *testing.T, names, raw string) {
		_ = orderNames([]byte(raw))
		if !utf8.ValidString(names) {
			t.Skip("JSON cannot carry invalid UTF-8")
		}
		list := strings.Split(names, ",")
		if got := orderNames([]byte(jws(t, newOrder(list...)))); !slices.Equal(got, list) {
			t.Fatalf("orderNames = %q, want %q", got, list)
		}
	})
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		failures int
		lo, hi   time.Duration // bounds of the result
	}{
		{failures: 1, lo: 500 * time.Millisecond, hi: time.Second},
		{failures: 2, lo: time.Second, hi: 2 * time.Second},
		{failures: 3, lo: 2 * time.Second, hi: 4 * time.Second},
		{failures: 10, lo: 5 * time.Second, hi: 10 * time.Second},
		{failures: 1000, lo: 5 * time.Second, hi: 10 * time.Second},
	}
	for _, tc := range tests {
		for range 50 {
			if d := backoff(time.Second, 10*time.Second, tc.failures); d < tc.lo || d > tc.hi {
				t.Fatalf("backoff after %d failures = %v, want within [%v, %v]", tc.failures, d, tc.lo, tc.hi)
			}
		}
	}
}

// TestCheck: every bad setting is reported, all at once, each as a
// *SettingError naming its field, and Check creates nothing.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	emptyPEM := filepath.Join(dir, "empty.pem")
	writeFile(t, emptyPEM, []byte("no certificates here"))
	notDir := filepath.Join(dir, "file")
	writeFile(t, notDir, []byte("x"))
	missing := filepath.Join(dir, "data")

	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error; nil: no error
	}{
		{name: "valid", cfg: Config{DataDir: missing}},
		{name: "missing roots file", cfg: Config{DataDir: dir, CARoots: filepath.Join(dir, "nope.pem")}, want: []string{"CARoots: ", "readable PEM file"}},
		{name: "roots file without PEM", cfg: Config{DataDir: dir, CARoots: emptyPEM}, want: []string{"CARoots: ", "holds no PEM certificate"}},
		{name: "empty data dir", cfg: Config{}, want: []string{"DataDir: is empty"}},
		{name: "CA not https", cfg: Config{DataDir: dir, CA: "http://127.0.0.1/dir"}, want: []string{"CA: ", "https://"}},
		{name: "CA not a URL", cfg: Config{DataDir: dir, CA: "::"}, want: []string{"CA: "}},
		{name: "data dir is a file", cfg: Config{DataDir: notDir}, want: []string{"DataDir: ", "writable directory"}},
		{name: "missing certs dir", cfg: Config{DataDir: dir, CertsDir: filepath.Join(dir, "nope")}, want: []string{"CertsDir: "}},
		{name: "http-01 only", cfg: Config{DataDir: dir, ChallengeType: ChallengeHTTP01}},
		{name: "tls-alpn-01 only", cfg: Config{DataDir: dir, ChallengeType: ChallengeTLSALPN01}},
		{name: "unknown challenge type", cfg: Config{DataDir: dir, ChallengeType: "dns-01"}, want: []string{"ChallengeType: ", "http-01 or tls-alpn-01"}},
		{name: "challenge types as a list", cfg: Config{DataDir: dir, ChallengeType: "http-01,tls-alpn-01"}, want: []string{"ChallengeType: "}},
		{name: "everything wrong at once", cfg: Config{CA: "ftp://x", CARoots: emptyPEM, CertsDir: notDir}, want: []string{"CA: ", "CARoots: ", "DataDir: ", "CertsDir: "}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Check()
			if _, serr := os.Stat(missing); !errors.Is(serr, fs.ErrNotExist) {
				t.Fatalf("Check created or touched %s (%v): it must only read", missing, serr)
			}
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			var se *SettingError
			if !errors.As(err, &se) {
				t.Fatalf("Check: %v, want a *SettingError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestNewErrors: what New builds and cannot build fails it.
func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	writeFile(t, notDir, []byte("x"))
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error; nil: no error
	}{
		{name: "valid", cfg: Config{DataDir: filepath.Join(dir, "data")}},
		{name: "missing roots file", cfg: Config{DataDir: dir, CARoots: filepath.Join(dir, "nope.pem")}, want: []string{"ACME CA roots", "readable PEM file"}},
		{name: "data dir is a file", cfg: Config{DataDir: notDir}, want: []string{"ACME cache", "not a directory"}},
		{name: "missing certs dir", cfg: Config{DataDir: dir, CertsDir: filepath.Join(dir, "nope")}, want: []string{"certificates directory"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("New succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestStatusJSON: the shape GET /api/certs serves.
func TestStatusJSON(t *testing.T) {
	data, err := json.Marshal(Status{Host: "a.example.test", Source: SourceACME, NotAfter: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"host":"a.example.test","source":"acme","not_after":"2030-01-02T03:04:05Z","error":""}`
	if string(data) != want {
		t.Errorf("JSON %s, want %s", data, want)
	}
}
