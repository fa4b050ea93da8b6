// Command sse-demo is a small Server-Sent Events service for the swarm-ingress
// demo. It listens on $PORT (default 8080):
//
//	/        an HTML page that shows the stream with EventSource
//	/events  text/event-stream: one event per ?interval (default 1s), ?n events
//	         (default: until the client leaves)
package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", page)
	mux.HandleFunc("GET /events", events)
	srv := &http.Server{Addr: net.JoinHostPort("", port), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "sse-demo:", err)
		os.Exit(1)
	}
}

const html = `<!doctype html>
<title>swarm-ingress SSE demo</title>
<pre id="out"></pre>
<script>
const out = document.getElementById("out");
new EventSource("events").onmessage = (e) => { out.textContent += e.data + "\n"; };
</script>
`

func page(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, html)
}

func events(w http.ResponseWriter, r *http.Request) {
	interval := time.Second
	if v := r.URL.Query().Get("interval"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Millisecond {
			http.Error(w, "interval must be a Go duration of at least 10ms", http.StatusBadRequest)
			return
		}
		interval = d
	}
	limit := -1
	if v := r.URL.Query().Get("n"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			http.Error(w, "n must be a positive integer", http.StatusBadRequest)
			return
		}
		limit = n
	}
	host, _ := os.Hostname()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for i := 1; limit < 0 || i <= limit; i++ {
		if i > 1 {
			select {
			case <-ticker.C:
			case <-r.Context().Done():
				return
			}
		}
		_, err := fmt.Fprintf(w, "id: %d\ndata: {\"n\":%d,\"from\":%q,\"sent\":%q}\n\n",
			i, i, host, time.Now().UTC().Format("15:04:05.000"))
		if err != nil || rc.Flush() != nil {
			return
		}
	}
}
