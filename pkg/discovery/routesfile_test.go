package discovery

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRoutesFile drives the routes file follower through the changes an
// operator makes: edits, a Swarm-config style symlink swap, a broken file
// (the last good entries stay), a removed file, and the way back.
func TestRoutesFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "routes.yml")
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	swap := func(target string) { // atomic replacement of the symlink at path
		tmp := filepath.Join(dir, "routes.yml.tmp")
		os.Remove(tmp)
		if err := os.Symlink(target, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	entry := func(name, upstream string) string {
		return "services:\n  - name: " + name + "\n    upstreams: [\"" + upstream + "\"]\n    labels:\n      ingress.host: " + name + ".test\n"
	}
	v1 := write("v1.yml", entry("one", "127.0.0.1:8081"))
	coldBad := write("cold.yml", entry("one", "127.0.0.1:8081")+entry("bad", "127.0.0.1")[len("services:\n"):])
	oneBroken := write("onebroken.yml", entry("one", "127.0.0.1")+entry("three", "127.0.0.1:8083")[len("services:\n"):])
	v2 := write("v2.yml", entry("two", "localhost:8082"))
	broken := write("broken.yml", "services: [\n")
	swap(coldBad)

	f := newRoutesFile(path, nil)
	steps := []struct {
		name        string
		change      func()
		wantChanged bool
		wantNames   []string
		wantUps     []string
		wantErr     string // substring of the routes-file error; "" for none
		// the service the error names (routesFileService when empty); its
		// label is then the file and the service's line
		wantErrService string
	}{
		{name: "first read, one bad service of two", change: func() {}, wantChanged: true, wantNames: []string{"one"}, wantUps: []string{"127.0.0.1:8081"},
			wantErr: `upstream "127.0.0.1" must read host:port, e.g. 192.0.2.10:8080 (it is not served)`, wantErrService: "bad"},
		{name: "good", change: func() { swap(v1) }, wantChanged: true, wantNames: []string{"one"}, wantUps: []string{"127.0.0.1:8081"}},
		{name: "unchanged", change: func() {}, wantChanged: false, wantNames: []string{"one"}, wantUps: []string{"127.0.0.1:8081"}},
		{name: "a broken service keeps its last good version", change: func() { swap(oneBroken) }, wantChanged: true,
			wantNames: []string{"one", "three"}, wantUps: []string{"127.0.0.1:8081", "127.0.0.1:8083"},
			wantErr: "(its last good version keeps serving)", wantErrService: "one"},
		{name: "fixed", change: func() { swap(v1) }, wantChanged: true, wantNames: []string{"one"}, wantUps: []string{"127.0.0.1:8081"}},
		{name: "symlink swap", change: func() { swap(v2) }, wantChanged: true, wantNames: []string{"two"}, wantUps: []string{"127.0.0.1:8082"}},
		{name: "broken keeps last good", change: func() { swap(broken) }, wantChanged: true, wantNames: []string{"two"}, wantUps: []string{"127.0.0.1:8082"}, wantErr: "not valid YAML"},
		{name: "still broken", change: func() {}, wantChanged: false, wantNames: []string{"two"}, wantUps: []string{"127.0.0.1:8082"}, wantErr: "not valid YAML"},
		{name: "removed keeps last good", change: func() { os.Remove(path) }, wantChanged: true, wantNames: []string{"two"}, wantUps: []string{"127.0.0.1:8082"}, wantErr: "no such file"},
		{name: "back", change: func() { swap(v1) }, wantChanged: true, wantNames: []string{"one"}, wantUps: []string{"127.0.0.1:8081"}},
		{name: "edited in place", change: func() { write("v1.yml", entry("uno", "127.0.0.1:9000")) }, wantChanged: true, wantNames: []string{"uno"}, wantUps: []string{"127.0.0.1:9000"}},
	}
	for _, s := range steps {
		s.change()
		changed := f.check(t.Context())
		var names, ups []string
		for _, svc := range f.services {
			names = append(names, svc.Name)
			for _, u := range svc.Upstreams {
				ups = append(ups, u.String())
			}
		}
		if changed != s.wantChanged || !slices.Equal(names, s.wantNames) || !slices.Equal(ups, s.wantUps) {
			t.Errorf("%s: changed %v names %v upstreams %v, want %v %v %v", s.name, changed, names, ups, s.wantChanged, s.wantNames, s.wantUps)
		}
		errs := f.errors()
		switch {
		case s.wantErr == "" && len(errs) > 0:
			t.Errorf("%s: errors %+v, want none", s.name, errs)
		case s.wantErr != "" && s.wantErrService == "" && (len(errs) != 1 || errs[0].Service != routesFileService || errs[0].Label != path || !strings.Contains(errs[0].Error, s.wantErr)):
			t.Errorf("%s: errors %+v, want one routes-file error for %s containing %q", s.name, errs, path, s.wantErr)
		case s.wantErrService != "" && (len(errs) != 1 || errs[0].Service != s.wantErrService || !strings.HasPrefix(errs[0].Label, path+":") || !strings.Contains(errs[0].Error, s.wantErr)):
			t.Errorf("%s: errors %+v, want one error for service %s at %s:<line> containing %q", s.name, errs, s.wantErrService, path, s.wantErr)
		}
	}
}

func TestRoutesFileUnset(t *testing.T) {
	f := newRoutesFile("", nil)
	if f.check(t.Context()) || len(f.services) != 0 || len(f.errors()) != 0 {
		t.Fatalf("no routes file: changed or has content")
	}
}
