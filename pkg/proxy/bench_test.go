package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkProxyGET measures a small keep-alive GET through the handler to
// a real upstream (client and upstream costs included).
func BenchmarkProxyGET(b *testing.B) {
	up := backend(b, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	f := newFixture(b, Config{}, table(testRoute("app.test", addrOf(b, up))))
	client := f.front.Client()
	req, _ := http.NewRequest("GET", f.front.URL+"/", nil)
	req.Host = "app.test"
	b.ReportAllocs()
	for b.Loop() {
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
}

// BenchmarkServeHTTP measures the handler alone against a real upstream,
// with an in-memory response writer.
func BenchmarkServeHTTP(b *testing.B) {
	up := backend(b, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	h := New(Config{})
	h.SetTable(table(testRoute("app.test", addrOf(b, up))))
	req := httptest.NewRequest("GET", "http://app.test/", nil)
	req.RemoteAddr = "192.0.2.1:1234"
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// BenchmarkProxyGETParallel is the shape of the wrk benchmark: many
// keep-alive clients sending small GETs through a real loopback front
// server to a real loopback upstream, with the access log on.
func BenchmarkProxyGETParallel(b *testing.B) {
	up := backend(b, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	f := newFixture(b, Config{Logger: newLogger(io.Discard)}, table(testRoute("app.test", addrOf(b, up))))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.Cleanup(client.CloseIdleConnections)
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		req, _ := http.NewRequest("GET", f.front.URL+"/small", nil)
		req.Host = "app.test"
		for pb.Next() {
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	})
}
