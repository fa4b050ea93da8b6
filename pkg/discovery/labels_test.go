package discovery

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

var updateGolden = flag.Bool("update", false, "rewrite the expected output of golden files in testdata/")

const goldenSep = "----"

// TestGoldenLabels runs ParseLabels on each testdata/labels/*.txt: labels as
// key=value lines ('#' starts a comment line), a line "----", then the
// expected routes and errors as renderSpecs writes them. -update rewrites
// the part after the separator.
func TestGoldenLabels(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "labels", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files in testdata/labels: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			input, want, ok := strings.Cut(string(data), "\n"+goldenSep+"\n")
			if !ok {
				t.Fatalf("%s: no %q separator line", file, goldenSep)
			}
			labels, err := parseGoldenLabels(input)
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			specs, errs := ParseLabels("ingress.", labels)
			got := renderSpecs(specs, errs)
			if *updateGolden {
				if err := os.WriteFile(file, []byte(input+"\n"+goldenSep+"\n"+got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != want {
				t.Errorf("%s: output differs (run with -update to accept)\n--- got:\n%s--- want:\n%s", file, got, want)
			}
		})
	}
}

func parseGoldenLabels(input string) (map[string]string, error) {
	labels := map[string]string{}
	for i, line := range strings.Split(input, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: want key=value, got %q", i+1, line)
		}
		if _, dup := labels[k]; dup {
			return nil, fmt.Errorf("line %d: label %q twice", i+1, k)
		}
		labels[k] = v
	}
	return labels, nil
}

// renderSpecs writes specs and errors in a stable, readable form.
func renderSpecs(specs []Spec, errs []route.Error) string {
	var b bytes.Buffer
	for _, s := range specs {
		r := s.Route
		fmt.Fprintf(&b, "route %s\n", r.Name)
		if r.Blocked != "" {
			fmt.Fprintf(&b, "  BLOCKED: %s\n", r.Blocked)
		}
		fmt.Fprintf(&b, "  hosts: %s\n", strings.Join(r.Hosts, " "))
		fmt.Fprintf(&b, "  path: %s  strip_prefix: %t  port: %d\n", r.Path, r.StripPrefix, r.Port)
		fmt.Fprintf(&b, "  tls: %s  redirect: %t  scheme: %s  stream: %t\n", r.TLS, r.Redirect, r.Scheme, r.Stream)
		fmt.Fprintf(&b, "  upstream: %q  network: %q\n", s.Upstream, s.Network)
		fmt.Fprintf(&b, "  timeout: %s  max_body: %d  priority: %d\n", r.Timeout, r.MaxBody, r.Priority)
		if r.AllowEncodedSlashes {
			fmt.Fprintf(&b, "  allow_encoded_slashes: true\n")
		}
		if r.ConnectTimeout != 0 || r.ClientBodyTimeout != 0 || r.ClientWriteTimeout != 0 || r.UpstreamIdleTimeout != 0 {
			fmt.Fprintf(&b, "  connect_timeout: %s  client_body_timeout: %s  client_write_timeout: %s  upstream_idle_timeout: %s\n",
				r.ConnectTimeout, r.ClientBodyTimeout, r.ClientWriteTimeout, r.UpstreamIdleTimeout)
		}
		if r.Weighted || r.Sticky != "" || r.SlowStart != 0 {
			fmt.Fprintf(&b, "  weight: %d (set: %t)  sticky: %q  slow_start: %s\n", r.Weight, r.Weighted, r.Sticky, r.SlowStart)
		}
		for _, u := range r.BasicAuth {
			fmt.Fprintf(&b, "  auth.basic: %s:%s\n", u.User, u.Hash)
		}
		for _, p := range r.Allow {
			fmt.Fprintf(&b, "  allow: %s\n", p)
		}
		for _, h := range r.Headers {
			fmt.Fprintf(&b, "  header: %s: %q\n", h.Name, h.Value)
		}
		renderAccess(&b, r)
		renderHealth(&b, r)
		renderRewrite(&b, r)
	}
	for _, e := range errs {
		fmt.Fprintf(&b, "error %s: %s\n", e.Label, e.Error)
	}
	if b.Len() == 0 {
		b.WriteString("(nothing)\n")
	}
	return b.String()
}

// TestParseLabelsRejects covers values a golden file cannot hold (line
// breaks) and checks that an auth.basic error never quotes the hash.
func TestParseLabelsRejects(t *testing.T) {
	const hash = "$2a$04$xYK5g4vT5cfYtru6a/Ahmudw8I6I5jztFuOuKfi.aj/uniimTNcoQ"
	tests := []struct {
		name, key, value string
		wantErr          string
		mustNotHold      string
	}{
		{name: "header value with CRLF", key: "headers.X-A", value: "a\r\nSet-Cookie: x=1", wantErr: "line break or control character"},
		{name: "header value with LF", key: "headers.X-A", value: "a\nb", wantErr: "line break or control character"},
		{name: "header value with CR", key: "headers.X-A", value: "a\rb", wantErr: "line break or control character"},
		{name: "host with newline", key: "host", value: "a.example.com\nb.example.com", wantErr: "is not allowed"},
		{name: "path with newline", key: "path", value: "/a\n/b", wantErr: "is not allowed"},
		{name: "bad hash is not quoted", key: "auth.basic", value: "alice:" + hash[:59] + "!", wantErr: "not a bcrypt hash", mustNotHold: hash[7:40]},
		{name: "bad cost hash is not quoted", key: "auth.basic", value: "alice:$2a$03$" + hash[7:], wantErr: "not a bcrypt hash", mustNotHold: hash[7:40]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			labels := map[string]string{"ingress.host": "example.com", "ingress." + tc.key: tc.value}
			if tc.key == "host" {
				labels = map[string]string{"ingress.host": tc.value}
			}
			specs, errs := ParseLabels("ingress.", labels)
			if isSecurityKey(tc.key) { // fails closed: the route is kept, blocked
				if len(specs) != 1 || specs[0].Route.Blocked == "" || len(specs[0].Route.Upstreams) != 0 {
					t.Fatalf("specs = %+v, want one blocked route", specs)
				}
				if tc.mustNotHold != "" && strings.Contains(specs[0].Route.Blocked, tc.mustNotHold) {
					t.Fatalf("blocked reason quotes the hash: %s", specs[0].Route.Blocked)
				}
			} else if len(specs) != 0 {
				t.Fatalf("a route was produced: %+v", specs)
			}
			if len(errs) != 1 || errs[0].Label != "ingress."+tc.key || !strings.Contains(errs[0].Error, tc.wantErr) {
				t.Fatalf("errors = %+v, want one for ingress.%s containing %q", errs, tc.key, tc.wantErr)
			}
			if tc.mustNotHold != "" && strings.Contains(errs[0].Error, tc.mustNotHold) {
				t.Fatalf("error quotes the hash: %s", errs[0].Error)
			}
		})
	}
}
