package discovery

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseRoutesFile(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		want     []StaticEntry
		wantErrs []string // each must appear in the error
	}{
		{
			name: "valid, scalar values kept as written, aliases followed",
			file: `# static routes
services:
  - name: legacy
    upstreams: ["192.0.2.10:8080", "backend.lan:8080"]
    labels:
      ingress.host: legacy.example.com
      ingress.priority: 5
      ingress.stream: true
      ingress.max_body:
  - name: other_1
    upstreams:
      - localhost:9000
    labels: &common
      ingress.host: other.example.com
`,
			want: []StaticEntry{
				{Name: "legacy", Line: 3, Upstreams: []string{"192.0.2.10:8080", "backend.lan:8080"},
					Labels: map[string]string{"ingress.host": "legacy.example.com", "ingress.priority": "5", "ingress.stream": "true", "ingress.max_body": ""}},
				{Name: "other_1", Line: 10, Upstreams: []string{"localhost:9000"},
					Labels: map[string]string{"ingress.host": "other.example.com"}},
			},
		},
		{name: "empty file", file: ""},
		{name: "comments only", file: "# nothing yet\n"},
		{name: "no services", file: "services:\n"},
		{
			name:     "unknown top-level field",
			file:     "services: []\nroutes: []\n",
			wantErrs: []string{`line 2: unknown field "routes" in the routes file (known: services)`},
		},
		{
			name: "unknown service field, with its line",
			file: `services:
  - name: a
    upstream: ["192.0.2.1:80"]
    labels: {ingress.host: a.example.com}
`,
			wantErrs: []string{`line 3: unknown field "upstream" in a service (known: name, upstreams, labels)`},
		},
		{
			name: "every problem at once",
			file: `services:
  - name: a
    upstreams: ["192.0.2.1:80"]
    labels: {ingress.host: a.example.com}
  - name: a
    upstreams: ["192.0.2.2"]
    labels: {ingress.host: b.example.com}
  - upstreams: ["192.0.2.3:80"]
    labels: {ingress.host: c.example.com}
  - name: d
    labels: {ingress.host: d.example.com}
  - name: e
    upstreams: ["192.0.2.5:80"]
  - name: "bad name"
    upstreams: ["192.0.2.6:0", "http://x:80", "[2001:db8::1]:80", "::1:80"]
    labels: {ingress.host: [a, b], "<<": x}
`,
			want: []StaticEntry{{Name: "a", Line: 2, Upstreams: []string{"192.0.2.1:80"}, Labels: map[string]string{"ingress.host": "a.example.com"}}},
			wantErrs: []string{
				`line 5: service name "a" is already used on line 2`,
				`line 6: upstream "192.0.2.2" must read host:port`,
				`line 8: a service needs a name`,
				`line 10: service "d" needs upstreams`,
				`line 12: service "e" needs labels`,
				`line 14: name must be letters, digits`,
				`line 15: upstream "192.0.2.6:0": port must be a number from 1 to 65535`,
				`line 15: upstream "http://x:80" must read host:port, without scheme or path`,
				`line 15: upstream "[2001:db8::1]:80" looks like an IPv6 address: upstreams are IPv4 only`,
				`line 15: upstream "::1:80" looks like an IPv6 address: upstreams are IPv4 only`,
				`line 16: the value of label "ingress.host" must be a single value`,
				`line 16: a label must be a plain key (merge keys << are not supported)`,
			},
		},
		{
			name:     "duplicate keys",
			file:     "services:\n  - name: a\n    name: b\n    upstreams: [\"192.0.2.1:80\"]\n    labels: {x: 1, x: 2}\n",
			wantErrs: []string{`line 3: field "name" is set twice in a service`, `line 5: label "x" is set twice`},
		},
		{
			name:     "not a mapping",
			file:     "- name: a\n",
			wantErrs: []string{"line 1: the routes file must be a mapping with keys services"},
		},
		{
			name:     "services not a list",
			file:     "services: {name: a}\n",
			wantErrs: []string{"line 1: services must be a list"},
		},
		{
			name:     "two documents",
			file:     "services: []\n---\nservices: []\n",
			wantErrs: []string{"line 2: routes file must hold one YAML document"},
		},
		{
			name:     "not YAML",
			file:     "services: [\n",
			wantErrs: []string{"routes file is not valid YAML"},
		},
		{
			name:     "too large",
			file:     "# " + strings.Repeat("x", maxRoutesFile) + "\n",
			wantErrs: []string{"routes file is larger than"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRoutesFile(strings.NewReader(tc.file))
			if len(tc.wantErrs) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("entries:\n got %+v\nwant %+v", got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; entries %+v", got)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("entries with the error:\n got %+v\nwant %+v", got, tc.want)
			}
			for _, w := range tc.wantErrs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != len(tc.wantErrs) {
				t.Errorf("got %d problems, want %d:\n%v", n, len(tc.wantErrs), err)
			}
		})
	}
}
