package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/websocket"
)

func TestEndpoints(t *testing.T) {
	srv := httptest.NewServer(newMux())
	defer srv.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "other")
	}))
	defer other.Close()

	tests := []struct {
		name     string
		path     string
		env      string // FETCH_ALLOW
		wantCode int
		wantType string
		wantBody string // substring
	}{
		{name: "echo", path: "/a/b?q=1", wantCode: 200, wantType: "application/json", wantBody: `"raw_query":"q=1"`},
		{name: "status", path: "/status/418", wantCode: 418},
		{name: "bad status", path: "/status/abc", wantCode: 400},
		{name: "sse", path: "/sse?n=3&interval=1ms", wantCode: 200, wantType: "text/event-stream", wantBody: "data: 1\n\ndata: 2\n\ndata: 3\n\n"},
		{name: "ndjson", path: "/ndjson?n=2&interval=1ms", wantCode: 200, wantType: "application/x-ndjson", wantBody: "{\"i\":1}\n{\"i\":2}\n"},
		{name: "bad interval", path: "/sse?interval=soon", wantCode: 400},
		{name: "slow", path: "/slow?d=1ms", wantCode: 200, wantBody: `"path":"/slow"`},
		{name: "fetch loopback", path: "/fetch?url=" + url.QueryEscape(other.URL), wantCode: 200, wantBody: "other"},
		{name: "fetch outside allow", path: "/fetch?url=" + url.QueryEscape("http://192.0.2.1/"), wantCode: 403},
		{name: "fetch name", path: "/fetch?url=" + url.QueryEscape("http://localhost/"), wantCode: 400},
		{name: "fetch refused upstream", path: "/fetch?url=" + url.QueryEscape("http://127.0.0.1:1/"), env: "192.0.2.0/24", wantCode: 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("FETCH_ALLOW", tt.env)
			resp, err := http.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tt.wantCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); tt.wantType != "" && ct != tt.wantType {
				t.Errorf("Content-Type %q, want %q", ct, tt.wantType)
			}
			if !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("body %q does not contain %q", body, tt.wantBody)
			}
		})
	}
}

func TestFetchAllowList(t *testing.T) {
	t.Setenv("FETCH_ALLOW", "10.0.3.0/24, 10.0.9.0/24")
	srv := httptest.NewServer(newMux())
	defer srv.Close()
	for _, target := range []string{"http://10.0.4.1/", "http://8.8.8.8/", "http://[::1]/"} {
		resp, err := http.Get(srv.URL + "/fetch?url=" + url.QueryEscape(target))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 && resp.StatusCode != 400 {
			t.Errorf("fetch %s: status %d, want 403 or 400 (refused before dialling)", target, resp.StatusCode)
		}
	}
	for _, addr := range []string{"10.0.3.7", "10.0.9.250"} {
		if !allowed(mustAddr(t, addr)) {
			t.Errorf("%s not allowed by FETCH_ALLOW", addr)
		}
	}
}

func TestEventsUntilClientLeaves(t *testing.T) {
	srv := httptest.NewServer(newMux())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/events?interval=1ms")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got []string
	scanner := bufio.NewScanner(resp.Body)
	for len(got) < 5 && scanner.Scan() {
		if d, ok := strings.CutPrefix(scanner.Text(), "data: "); ok {
			got = append(got, d)
		}
	}
	if !slices.Equal(got, []string{"1", "2", "3", "4", "5"}) {
		t.Errorf("events = %q, want 1..5", got)
	}
}

func TestWebSocketEcho(t *testing.T) {
	srv := httptest.NewServer(newMux())
	defer srv.Close()
	ws, err := websocket.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", "", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if _, err := ws.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := ws.Read(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Errorf("echo = %q, %v; want ping", buf[:n], err)
	}
}

func TestEchoJSON(t *testing.T) {
	srv := httptest.NewServer(newMux())
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/x", strings.NewReader("12345"))
	req.Header.Set("X-Test", "yes")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e Echo
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	if e.Method != "POST" || e.Path != "/x" || e.BodyBytes != 5 || e.Headers["X-Test"][0] != "yes" || e.Hostname == "" {
		t.Errorf("echo = %+v", e)
	}
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
