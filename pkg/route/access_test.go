package route

import (
	"encoding/json"
	"testing"
	"time"
)

func TestAccessView(t *testing.T) {
	r := &Route{Service: "s", Name: "default", Hosts: []string{"a.example.com"}, Path: "/",
		Limit:         Limit{Rate: Rate{N: 600, Per: time.Minute}, Burst: 5, Conn: 2},
		BasicAuthFile: "/run/secrets/htpasswd",
		ForwardAuth:   ForwardAuth{URL: "http://auth:4180/auth", Headers: []string{"X-User"}},
		ErrorPages:    []ErrorPage{{Code: 502, Source: "/p/502.html"}, {Code: 503, Source: "http://pages/503"}},
		Maintenance:   true,
	}
	plain := &Route{Service: "s", Name: "plain", Hosts: []string{"b.example.com"}, Path: "/"}
	b, err := json.Marshal(New(Snapshot{Routes: []*Route{r, plain}}).View().Routes)
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := `{"burst":5,"conn":2,"rate":"600r/m"}`
	if lb, _ := json.Marshal(got[0]["limit"]); string(lb) != want {
		t.Errorf("limit = %s, want %s", lb, want)
	}
	if got[0]["auth_basic_file"] != "/run/secrets/htpasswd" || got[0]["maintenance"] != true ||
		got[0]["auth_forward"].(map[string]any)["url"] != "http://auth:4180/auth" ||
		got[0]["error_pages"].(map[string]any)["503"] != "http://pages/503" {
		t.Errorf("view = %v", got[0])
	}
	for _, k := range []string{"limit", "auth_basic_file", "auth_forward", "error_pages", "maintenance"} {
		if _, ok := got[1][k]; ok {
			t.Errorf("a route without %s lists it: %v", k, got[1])
		}
	}
}
