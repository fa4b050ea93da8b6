package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestImportNginxCommand(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.conf", "server { listen 80; server_name a.example.com; location / { proxy_pass http://app:8080; } }\n")
	bad := write("bad.conf", "server { listen 80; server_name b.example.com; location / { proxy_pass http://app:8080; } location ~ \\.php$ { fastcgi_pass php:9000; } }\n")
	broken := write("broken.conf", "server {\n")
	getenv := func(string) string { return "" }

	tests := []struct {
		name    string
		args    []string
		wantErr bool
		out     []string
	}{
		{"stack labels", []string{"import-nginx", good}, false, []string{"  app:\n", `ingress.host: "a.example.com"`, `ingress.port: "8080"`, `ingress.tls: "off"`}},
		{"routes file", []string{"import-nginx", "--routes-file", good}, false, []string{"- name: app", `upstreams: ["app:8080"]`}},
		{"dropped directive fails", []string{"import-nginx", bad}, true, []string{"NOT carried over", "bad.conf:1: location ~"}},
		{"allow partial", []string{"import-nginx", "--allow-partial", bad}, false, []string{"NOT carried over"}},
		{"syntax error", []string{"import-nginx", broken}, true, nil},
		{"no file", []string{"import-nginx"}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, getenv, &stdout, &stderr)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v; stderr: %s", err, tt.wantErr, stderr.String())
			}
			if err != nil && len(tt.out) > 0 && !errors.Is(err, errReported) {
				t.Errorf("err = %v, want errReported after printing", err)
			}
			for _, s := range tt.out {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("output lacks %q:\n%s", s, stdout.String())
				}
			}
		})
	}
}
