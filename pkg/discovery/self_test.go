package discovery

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/network"
)

const testID = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899"

func TestContainerIDFromProc(t *testing.T) {
	tests := []struct {
		name      string
		mountinfo string
		cgroup    string
		want      string
	}{
		{
			name: "cgroup v2: only mountinfo knows",
			mountinfo: "1203 1184 0:98 / / rw,relatime - overlay overlay rw\n" +
				"1221 1203 254:1 /var/lib/docker/containers/" + testID + "/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/vda1 rw\n" +
				"1222 1203 254:1 /var/lib/docker/containers/" + testID + "/hostname /etc/hostname rw,relatime - ext4 /dev/vda1 rw\n",
			cgroup: "0::/\n",
			want:   testID,
		},
		{
			name:   "cgroup v1",
			cgroup: "12:pids:/docker/" + testID + "\n11:memory:/docker/" + testID + "\n",
			want:   testID,
		},
		{
			name:   "systemd cgroup driver",
			cgroup: "0::/system.slice/docker-" + testID + ".scope\n",
			want:   testID,
		},
		{
			name:      "not in a container",
			mountinfo: "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n",
			cgroup:    "4:memory:/process_api/f05f0accbfa04103c91b12014fa0aeaa\n0::/\n",
		},
		{
			name:      "volume named like a container path is not the hostname mount",
			mountinfo: "40 27 254:0 /srv/containers/" + testID + "/data /data rw - ext4 /dev/vda rw\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := idFromMountinfo([]byte(tc.mountinfo))
			if got == "" {
				got = idFromCgroup([]byte(tc.cgroup))
			}
			if got != tc.want {
				t.Fatalf("id = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNamedNetworks(t *testing.T) {
	all := []network.Summary{
		{ID: "o1", Name: "front", Driver: "overlay", Scope: "swarm"},
		{ID: "o2", Name: "back", Driver: "overlay", Scope: "swarm"},
		{ID: "b1", Name: "bridge", Driver: "bridge", Scope: "local"},
		{ID: "i1", Name: "ingress", Driver: "overlay", Scope: "swarm", Ingress: true},
	}
	tests := []struct {
		name     string
		names    []string
		want     []Network
		wantErrs []string // substrings, one per error
	}{
		{name: "sorted by name", names: []string{"front", "back"}, want: []Network{{"o2", "back"}, {"o1", "front"}}},
		{name: "missing", names: []string{"front", "nope"}, want: []Network{{"o1", "front"}}, wantErrs: []string{`"nope" (NETWORK_SETTING) does not exist`}},
		{name: "bridge and routing mesh", names: []string{"bridge", "ingress"}, wantErrs: []string{`"bridge"`, `"ingress"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := namedNetworks(all, tc.names, "NETWORK_SETTING")
			if !slices.Equal(got, tc.want) {
				t.Errorf("networks = %v, want %v", got, tc.want)
			}
			rerrs, rest := networkErrors(err, "NETWORK_SETTING")
			if rest != nil {
				t.Fatalf("setup error not recognised: %v", rest)
			}
			if len(rerrs) != len(tc.wantErrs) {
				t.Fatalf("errors = %+v, want %d", rerrs, len(tc.wantErrs))
			}
			for i, want := range tc.wantErrs {
				e := rerrs[i]
				if e.Service != ingressService || e.Label != "NETWORK_SETTING" || !strings.Contains(e.Error, want) ||
					strings.HasPrefix(e.Error, errNetworkSetup.Error()) {
					t.Errorf("error %d = %+v, want one containing %q", i, e, want)
				}
			}
		})
	}
}

func TestNetworkErrorsPassesAPIErrors(t *testing.T) {
	apiErr := fmt.Errorf("list networks: %w", errors.New("connection refused"))
	rerrs, err := networkErrors(apiErr, "NETWORK_SETTING")
	if err != apiErr || rerrs != nil {
		t.Fatalf("networkErrors(api error) = %v, %v; want the error back", rerrs, err)
	}
	if rerrs, err := networkErrors(nil, "NETWORK_SETTING"); rerrs != nil || err != nil {
		t.Fatalf("networkErrors(nil) = %v, %v", rerrs, err)
	}
}
