package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"
)

// secretFile writes a usable control secret and returns its path.
func secretFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ingress-control")
	if err := os.WriteFile(p, []byte("c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlYw==\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRoleSettings(t *testing.T) {
	secret := secretFile(t)
	short := filepath.Join(t.TempDir(), "short")
	os.WriteFile(short, []byte("abc\n"), 0o600)
	tests := []struct {
		name    string
		role    role
		kv      []string
		want    []string // each must appear in the error; none: valid
		notWant []string
	}{
		{name: "edge with a service name", role: roleEdge,
			kv: []string{"INGRESS_CONTROLLER", "ingress_controller", "INGRESS_CONTROL_SECRET_FILE", secret}},
		{name: "edge with addresses", role: roleEdge,
			kv: []string{"INGRESS_CONTROLLER", "10.0.0.5:8443, 10.0.0.6:8443", "INGRESS_CONTROL_SECRET_FILE", secret}},
		{name: "edge ignores ACME and discovery settings", role: roleEdge,
			kv: []string{"INGRESS_CONTROLLER", "ctl", "INGRESS_CONTROL_SECRET_FILE", secret,
				"INGRESS_ACME_CA", "http://ca.example/dir", "INGRESS_LABEL_PREFIX", "bad", "INGRESS_CACHE", "redis"}},
		{name: "edge without controller or secret", role: roleEdge,
			kv:   []string{"INGRESS_CONTROL_SECRET_FILE", "/no/such/secret"},
			want: []string{"INGRESS_CONTROLLER", "is empty", "INGRESS_CONTROL_SECRET_FILE /no/such/secret", "docker secret create ingress-control", "nothing was started"}},
		{name: "edge with a bad address and a short secret", role: roleEdge,
			kv:   []string{"INGRESS_CONTROLLER", "10.0.0.5:8443,nonsense:", "INGRESS_CONTROL_SECRET_FILE", short},
			want: []string{`"nonsense:" is not host:port`, "holds 3 bytes, want at least 16"}},
		{name: "edge with a service and no port", role: roleEdge,
			kv:   []string{"INGRESS_CONTROLLER", "ctl", "INGRESS_CONTROL_ADDR", "nonsense", "INGRESS_CONTROL_SECRET_FILE", secret},
			want: []string{"INGRESS_CONTROL_ADDR", "controllers' port"}},
		{name: "controller", role: roleController,
			kv: []string{"INGRESS_CONTROL_SECRET_FILE", secret, "INGRESS_HTTP_ADDR", "ignored by a controller"}},
		{name: "controller shares its admin port", role: roleController,
			kv:   []string{"INGRESS_CONTROL_SECRET_FILE", secret, "INGRESS_CONTROL_ADDR", ":9000", "INGRESS_ADMIN_ADDR", ":9000", "INGRESS_ACME_CA", "http://x"},
			want: []string{"INGRESS_ADMIN_ADDR", "same address as INGRESS_CONTROL_ADDR", "INGRESS_ACME_CA"}},
		{name: "controller without secret", role: roleController,
			kv:   []string{"INGRESS_CONTROL_SECRET_FILE", "/no/such/secret"},
			want: []string{"INGRESS_CONTROL_SECRET_FILE"}},
		{name: "serve needs no secret", role: roleServe,
			kv: []string{"INGRESS_CONTROL_SECRET_FILE", "/no/such/secret"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			values, _, err := loadSettings("test", nil, env(t, tc.kv...), new(bytes.Buffer))
			if err != nil {
				t.Fatal(err)
			}
			_, err = parseConfig(values, tc.role)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("valid settings refused: %v", err)
				}
				return
			}
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

func TestSwarmRole(t *testing.T) {
	tests := []struct {
		name string
		info swarm.Info
		want error
	}{
		{name: "manager", info: swarm.Info{LocalNodeState: swarm.LocalNodeStateActive, ControlAvailable: true}},
		{name: "worker", info: swarm.Info{LocalNodeState: swarm.LocalNodeStateActive}, want: errWorker},
		{name: "no swarm", info: swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive}, want: errNoSwarm},
	}
	for _, tc := range tests {
		if got := swarmRole(system.Info{Swarm: tc.info}); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
