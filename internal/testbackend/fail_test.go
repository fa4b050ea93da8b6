package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
)

// TestFailSwitch: 500 mode answers 500 everywhere, refuse mode refuses
// connections and cuts open ones, off brings the backend back on its port.
func TestFailSwitch(t *testing.T) {
	ln, err := listenSwitch("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fail := &failSwitch{next: newWarmup(0, newMux()), ln: ln}
	srv := &http.Server{Handler: fail}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	url := "http://" + ln.Addr().String()
	client := &http.Client{}
	get := func(path string) (int, error) {
		res, err := client.Get(url + path)
		if err != nil {
			return 0, err
		}
		res.Body.Close()
		return res.StatusCode, nil
	}
	control := func(mode string, want int) {
		t.Helper()
		rec := httptest.NewRecorder()
		fail.control(rec, httptest.NewRequest(http.MethodGet, "/fail?mode="+mode, nil))
		if rec.Code != want {
			t.Fatalf("fail %s: %d %s", mode, rec.Code, rec.Body)
		}
	}
	if code, err := get("/"); err != nil || code != 200 {
		t.Fatalf("normal: %d %v", code, err)
	}
	control("500", 200)
	for _, p := range []string{"/", "/healthz"} {
		if code, err := get(p); err != nil || code != 500 {
			t.Fatalf("500 mode %s: %d %v", p, code, err)
		}
	}
	control("refuse", 200)
	if _, err := get("/"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("refuse mode: %v, want connection refused", err)
	}
	control("off", 200)
	if code, err := get("/"); err != nil || code != 200 {
		t.Fatalf("off again: %d %v", code, err)
	}
	control("bogus", 400)
}
