package main

import (
	"fmt"
	"net/http"
	"time"
)

// sse sends n events "data: 1" … "data: n", one per interval, each flushed.
func sse(w http.ResponseWriter, r *http.Request) {
	n, ok := count(w, r, "n", 5)
	if !ok {
		return
	}
	interval, ok := duration(w, r, "interval", 100*time.Millisecond)
	if !ok {
		return
	}
	stream(w, r, "text/event-stream", n, interval, func(i int) string {
		return fmt.Sprintf("data: %d\n\n", i)
	})
}

// events sends one event per interval until the client goes away.
func events(w http.ResponseWriter, r *http.Request) {
	interval, ok := duration(w, r, "interval", time.Second)
	if !ok {
		return
	}
	stream(w, r, "text/event-stream", -1, interval, func(i int) string {
		return fmt.Sprintf("data: %d\n\n", i)
	})
}

// ndjson sends n lines {"i":1} … {"i":n}, one per interval, each flushed.
func ndjson(w http.ResponseWriter, r *http.Request) {
	n, ok := count(w, r, "n", 5)
	if !ok {
		return
	}
	interval, ok := duration(w, r, "interval", 100*time.Millisecond)
	if !ok {
		return
	}
	stream(w, r, "application/x-ndjson", n, interval, func(i int) string {
		return fmt.Sprintf("{\"i\":%d}\n", i)
	})
}

// stream writes frame(1), frame(2), … flushing after each, waiting interval
// before every frame after the first. n < 0 means until the client leaves.
func stream(w http.ResponseWriter, r *http.Request, contentType string, n int, interval time.Duration, frame func(int) string) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	ticker := time.NewTicker(max(interval, time.Millisecond))
	defer ticker.Stop()
	for i := 1; n < 0 || i <= n; i++ {
		if i > 1 {
			select {
			case <-ticker.C:
			case <-r.Context().Done():
				return
			}
		}
		if _, err := fmt.Fprint(w, frame(i)); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
