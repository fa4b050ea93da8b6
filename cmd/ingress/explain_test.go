package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var updateMatch = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestAdminMatchGolden: GET /api/match answers the explanation as JSON for
// a URL that matches (with the losing and shorter routes named) and for
// one that does not (with the nearest routes), 400 without a usable URL.
func TestAdminMatchGolden(t *testing.T) {
	a := testApp(t)
	a.publish(sampleTable())
	h := a.adminHandler()
	var got bytes.Buffer
	for _, u := range []string{"http://web.example.com/admin/users", "https://web.example.com/x?y=1", "http://jobs.example.com/api/run", "http://jobs.example.com/other"} {
		code, body := get(t, h, "/api/match?url="+url.QueryEscape(u))
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", u, code, body)
		}
		got.WriteString(body)
	}
	file := filepath.Join("testdata", "match.json.golden")
	if *updateMatch {
		if err := os.WriteFile(file, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if got.String() != string(want) {
		t.Errorf("%s differs (run with -update to accept):\n%s", file, got.String())
	}
	for _, q := range []string{"", "?url=", "?url=" + url.QueryEscape("ftp://x/")} {
		if code, _ := get(t, h, "/api/match"+q); code != http.StatusBadRequest {
			t.Errorf("/api/match%s = %d, want 400", q, code)
		}
	}
}

func TestExplainNeedsURL(t *testing.T) {
	var out, errs bytes.Buffer
	err := run(context.Background(), []string{"explain"}, func(string) string { return "" }, &out, &errs)
	if err == nil || !strings.Contains(err.Error(), "give one or more URLs") {
		t.Fatalf("err = %v", err)
	}
}

// TestExplainCommand: `ingress explain` reads the table as `ingress check`
// does (here a routes file; Docker is only listed, a label prefix of its
// own keeps other services out) and explains a URL that matches and one
// that does not, as text and as the JSON of GET /api/match.
func TestExplainCommand(t *testing.T) {
	if _, err := os.Stat("/var/run/docker.sock"); err != nil && os.Getenv("DOCKER_HOST") == "" {
		t.Skip("no Docker engine")
	}
	const pfx = "importerexplain."
	file := filepath.Join(t.TempDir(), "routes.yaml")
	routes := "services:\n  - name: legacy\n    upstreams: [\"192.0.2.10:8080\"]\n    labels:\n" +
		"      " + pfx + "host: legacy.example.test\n" +
		"      " + pfx + "path: /app\n" +
		"      " + pfx + "tls: \"off\"\n" +
		"      " + pfx + "allow: 10.0.0.0/8\n"
	if err := os.WriteFile(file, []byte(routes), 0o644); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string {
		switch k {
		case "INGRESS_ROUTES_FILE":
			return file
		case "INGRESS_LABEL_PREFIX":
			return pfx
		}
		return os.Getenv(k)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if err := run(ctx, []string{"explain", "http://legacy.example.test/app/x?y=1", "legacy.example.test/other"}, getenv, &stdout, &stderr); err != nil {
		t.Fatalf("explain: %v\n%s", err, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"route    legacy/default (hosts legacy.example.test, path /app, priority 0)",
		"allow            403 unless the client address is in 10.0.0.0/8",
		"upstreams in rotation: 192.0.2.10:8080",
		"legacy/default (hosts legacy.example.test, path /app): the host matches (exact) but the path /other does not lie under /app",
		"outcome  404: no route",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	stdout.Reset()
	if err := run(ctx, []string{"explain", "--json", "http://legacy.example.test/app"}, getenv, &stdout, &stderr); err != nil {
		t.Fatalf("explain --json: %v", err)
	}
	var e struct {
		Match     struct{ Route string } `json:"match"`
		Upstreams []string               `json:"upstreams"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &e); err != nil || e.Match.Route != "legacy/default" || len(e.Upstreams) != 1 {
		t.Errorf("--json: %v %+v\n%s", err, e, stdout.String())
	}
}
