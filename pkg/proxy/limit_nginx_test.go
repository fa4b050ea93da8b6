package proxy

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// TestLimitSideBySideWithNginx sends the same requests to the host's Nginx
// (limit_req with burst and nodelay, limit_conn, status 429) and to the
// proxy with the same limits, and compares the answers one by one. The
// rates are per minute, so that a whole run takes far less than one
// interval and the result does not depend on the machine's speed (the
// millisecond schedule of 10r/s is compared with Nginx's computation in
// TestLimiterMatchesNginx). Skipped where Nginx is not installed.
func TestLimitSideBySideWithNginx(t *testing.T) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
			t.Skip("no nginx on this machine (apt-get install nginx-light)")
		}
		bin = "/usr/sbin/nginx"
	}
	entered := make(chan struct{}, 4)
	proceed := make(chan struct{})
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/hold") {
			entered <- struct{}{}
			<-proceed
		}
		w.Write([]byte("ok"))
	})
	cases := []struct {
		name     string
		nginx    string // limit directives in the location
		limit    route.Limit
		requests int
	}{
		{"1r/m burst 5", "limit_req zone=r1 burst=5 nodelay;", route.Limit{Rate: route.Rate{N: 1, Per: time.Minute}, Burst: 5}, 20},
		{"1r/m no burst", "limit_req zone=r2;", route.Limit{Rate: route.Rate{N: 1, Per: time.Minute}}, 5},
		{"6r/m burst 2", "limit_req zone=r3 burst=2 nodelay;", route.Limit{Rate: route.Rate{N: 6, Per: time.Minute}, Burst: 2}, 10},
	}
	var locs strings.Builder
	for i, tc := range cases {
		fmt.Fprintf(&locs, "location /c%d/ { %s proxy_pass http://%s; }\n", i, tc.nginx, addrOf(t, up))
	}
	fmt.Fprintf(&locs, "location /conn/ { limit_conn c 2; proxy_pass http://%s; }\n", addrOf(t, up))
	base := startNginx(t, bin, `
limit_req_zone $binary_remote_addr zone=r1:1m rate=1r/m;
limit_req_zone $binary_remote_addr zone=r2:1m rate=1r/m;
limit_req_zone $binary_remote_addr zone=r3:1m rate=6r/m;
limit_conn_zone $binary_remote_addr zone=c:1m;
limit_req_status 429;
limit_conn_status 429;
server {
  listen 127.0.0.1:PORT;
  `+locs.String()+`
}`)

	client := &http.Client{Timeout: waitLimit}
	status := func(url string) int {
		t.Helper()
		res, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rt := testRoute("a.test", addrOf(t, up))
			rt.Limit = tc.limit
			f := newFixture(t, Config{}, table(rt))
			var viaNginx, viaProxy []int
			for range tc.requests {
				viaNginx = append(viaNginx, status(fmt.Sprintf("%s/c%d/x", base, i)))
				req := f.newRequest(t, "GET", "a.test", "/x", nil)
				res := f.do(t, req)
				readAll(t, res.Body)
				viaProxy = append(viaProxy, res.StatusCode)
			}
			t.Logf("nginx %v\nproxy %v", viaNginx, viaProxy)
			if fmt.Sprint(viaNginx) != fmt.Sprint(viaProxy) {
				t.Fatalf("Nginx and the proxy differ:\nnginx %v\nproxy %v", viaNginx, viaProxy)
			}
		})
	}
	t.Run("limit_conn 2", func(t *testing.T) {
		rt := testRoute("a.test", addrOf(t, up))
		rt.Limit = route.Limit{Conn: 2}
		f := newFixture(t, Config{}, table(rt))
		for _, target := range []struct {
			name string
			get  func(path string) int
		}{
			{"nginx", func(p string) int { return status(base + "/conn" + p) }},
			{"proxy", func(p string) int {
				res, err := f.front.Client().Do(newRequest(t, "GET", f.front.URL+"/conn"+p, "a.test", nil))
				if err != nil {
					t.Error(err)
					return 0
				}
				readAll(t, res.Body)
				res.Body.Close()
				return res.StatusCode
			}},
		} {
			done := make(chan int, 2)
			for range 2 {
				go func() { done <- target.get("/hold") }()
				select {
				case <-entered:
				case <-time.After(waitLimit): // hang guard
					t.Fatalf("%s: the held request never reached the upstream", target.name)
				}
			}
			third := target.get("/x")
			proceed <- struct{}{}
			proceed <- struct{}{}
			first, second := <-done, <-done
			if third != http.StatusTooManyRequests || first != 200 || second != 200 {
				t.Errorf("%s: held %d %d, third %d; want 200 200 429", target.name, first, second, third)
			}
		}
	})
}

// startNginx runs Nginx in the foreground with the http block conf (PORT
// replaced by a free loopback port) and returns its base URL.
func startNginx(t *testing.T, bin, conf string) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	full := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events {}
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
%[2]s
}
`, dir, strings.ReplaceAll(conf, "PORT", fmt.Sprint(port)))
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(full), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", path, "-p", dir)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(waitLimit)
	for {
		c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx did not listen: %s", log)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}
