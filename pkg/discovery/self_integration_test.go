package discovery

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/swarm-ingress/swarm-ingress/internal/swarmtest"
	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// TestOwnNetworks runs the self-detection logic on a real task container
// (standing in for the ingress's own) and the lookup of named networks on real
// networks.
func TestOwnNetworks(t *testing.T) {
	rig := swarmtest.New(t)
	own := rig.Network(t, "own")
	img := rig.BackendImage(t)
	id := rig.CreateService(t, backendSpec(rig.Name("self"), img, nil, 1, own))
	task := rig.WaitTasks(t, id, 1)[0]
	if task.Status.ContainerStatus == nil || task.Status.ContainerStatus.ContainerID == "" {
		t.Fatalf("running task %s has no container ID", task.ID)
	}
	containerID := task.Status.ContainerStatus.ContainerID
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ownNet := []Network{{ID: own.ID, Name: own.Name}}

	tests := []struct {
		name    string
		names   []string
		self    string // container ID the self-detection returns; "" fails
		want    []Network
		wantErr string // substring; setup errors only
	}{
		{name: "own container", self: containerID, want: ownNet},
		{name: "own container by short ID", self: containerID[:12], want: ownNet},
		{name: "no own container", wantErr: "set NETWORK_SETTING"},
		{name: "unknown container", self: strings.Repeat("0", 64), wantErr: "not known to this Docker engine"},
		{name: "named", names: []string{own.Name}, want: ownNet},
		{name: "missing name", names: []string{own.Name, rig.Name("missing")}, want: ownNet, wantErr: "does not exist"},
		{name: "not overlay", names: []string{"bridge"}, wantErr: "not an overlay"},
		{name: "routing mesh", names: []string{"ingress"}, wantErr: "not an overlay"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			self := func() (string, error) {
				if tc.self == "" {
					return "", errors.New("not in a container")
				}
				return tc.self, nil
			}
			got, err := resolveNetworks(ctx, rig.Client, tc.names, "NETWORK_SETTING", self)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("err = %v", err)
			}
			if tc.wantErr != "" && (!errors.Is(err, errNetworkSetup) || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want a setup error containing %q", err, tc.wantErr)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("networks = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestCheck builds one table, as `ingress check` does, with its errors.
func TestCheck(t *testing.T) {
	rig := swarmtest.New(t)
	shared := rig.Network(t, "check")
	img := rig.BackendImage(t)
	good, bad := rig.Name("good"), rig.Name("bad")
	rig.CreateService(t, backendSpec(good, img, map[string]string{"ingress.host": "good.test"}, 0, shared))
	rig.CreateService(t, backendSpec(bad, img, map[string]string{"ingress.host": "bad.test", "ingress.nope": "1"}, 0, shared))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	tbl, err := Check(ctx, Config{Docker: rig.Client, Networks: []string{shared.Name}})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if r := routeOf(tbl, good, "default"); r == nil || len(r.Upstreams) != 1 || r.Network != shared.Name {
		t.Errorf("good route = %+v:%s", r, describeTable(tbl))
	}
	if e := errorOf(tbl, bad); e == nil || e.Label != "ingress.nope" {
		t.Errorf("bad service error = %+v:%s", e, describeTable(tbl))
	}
	if r := routeOf(tbl, bad, "default"); r == nil || r.Blocked == "" || len(r.Upstreams) != 0 {
		t.Errorf("a service with an unknown (perhaps misspelt) label must have its route blocked, with no upstream: %+v", r)
	}

	missing := rig.Name("missing")
	tbl, err = Check(ctx, Config{Docker: rig.Client, Networks: []string{missing}, NetworkSetting: "NETWORK_SETTING"})
	if err != nil {
		t.Fatalf("Check with a missing network: %v", err)
	}
	if !slices.ContainsFunc(tbl.Errors, func(e route.Error) bool {
		return e.Label == "NETWORK_SETTING" && strings.Contains(e.Error, missing)
	}) {
		t.Errorf("no NETWORK_SETTING error naming %s:%s", missing, describeTable(tbl))
	}

	down, err := client.NewClientWithOpts(client.WithHost("unix://"+filepath.Join(t.TempDir(), "none.sock")), client.WithVersion("1.41"))
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	if tbl, err := Check(ctx, Config{Docker: down, Networks: []string{shared.Name}}); err == nil {
		t.Errorf("Check against no engine = %v, nil error", describeTable(tbl))
	}
}
