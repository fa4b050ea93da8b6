package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCheckRewriteLabels: `ingress check` lists a route with valid
// redirect, rewrite, header and compress keys, keeps out the one whose
// rewrite does not compile and names its label and the reason (issue 13).
// It reads a routes file; Docker is only listed (a label prefix of its own
// keeps other services out).
func TestCheckRewriteLabels(t *testing.T) {
	if _, err := os.Stat("/var/run/docker.sock"); err != nil && os.Getenv("DOCKER_HOST") == "" {
		t.Skip("no Docker engine")
	}
	const pfx = "nginxacheck."
	file := filepath.Join(t.TempDir(), "routes.yaml")
	routes := `services:
  - name: site
    upstreams: ["192.0.2.10:8080"]
    labels:
      ` + pfx + `host: example.test,www.example.test
      ` + pfx + `canonical_host: example.test
      ` + pfx + `rewrite: ^/old/(.*)$ /new/$1 permanent
      ` + pfx + `request_headers.X-Real-IP: $remote_addr
      ` + pfx + `compress: "true"
  - name: broken
    upstreams: ["192.0.2.11:8080"]
    labels:
      ` + pfx + `host: broken.test
      ` + pfx + `rewrite: ^/(?!admin) /x
`
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
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := run(ctx, []string{"check"}, getenv, &stdout, &stderr)
	out := stdout.String()
	if err == nil {
		t.Fatalf("check passed although a rewrite is bad:\n%s", out)
	}
	for _, want := range []string{"site/default", "example.test,www.example.test",
		"ERROR service broken, label " + pfx + "rewrite: error parsing regexp"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s\n%s", want, out, stderr.String())
		}
	}
	t.Logf("ingress check:\n%s", out)
	if strings.Contains(out, "broken/default") {
		t.Errorf("the broken route is listed:\n%s", out)
	}
}
