package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestWarmup: while warming up every request and /healthz get 503; after
// it, /healthz says 200 and requests reach the handlers. The warm-up's end
// is set in the past rather than waited for.
func TestWarmup(t *testing.T) {
	w := newWarmup(time.Hour, newMux())
	srv := httptest.NewServer(w)
	defer srv.Close()
	get := func(path string) int {
		t.Helper()
		res, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, p := range []string{"/", "/healthz", "/status/200"} {
		if code := get(p); code != http.StatusServiceUnavailable {
			t.Errorf("warming up: %s = %d, want 503", p, code)
		}
	}
	w.until = time.Now().Add(-time.Second)
	for p, want := range map[string]int{"/": 200, "/healthz": 200, "/status/418": 418} {
		if code := get(p); code != want {
			t.Errorf("warm: %s = %d, want %d", p, code, want)
		}
	}
}
