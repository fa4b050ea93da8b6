// Command testbackend is the upstream used by the integration tests. It is built
// as a static binary and imported as a one-file image (scripts/go-image.sh), so it
// must stay dependency-light. It listens on $PORT (default 80).
//
// Endpoints:
//
//	/            JSON echo of the request (see echo)
//	/sse         text/event-stream, ?n=5&interval=100ms: events "data: 1" … "data: n", each flushed
//	/events      text/event-stream, one event per ?interval (default 1s) until the client leaves
//	/ndjson      application/x-ndjson, ?n=5&interval=100ms: lines {"i":1} … {"i":n}, each flushed
//	/ws          WebSocket echo
//	/status/NNN  replies with status NNN
//	/slow        ?d=2s: waits that long before sending headers
//	/hang        never answers; returns when the client leaves
//	/fetch       ?url=http://IP:port/path: GETs the URL and relays status and body; only
//	             loopback and IPv4 addresses inside $FETCH_ALLOW (CIDRs) are allowed
//	/healthz     200, or 503 while warming up (lifecycle.go: WARMUP, DRAIN, healthcheck)
//
// `testbackend fail 500|refuse|off` makes the running backend fail (fail.go).
package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/net/websocket"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "testbackend:", err)
		os.Exit(1)
	}
}

func run() error {
	port := os.Getenv("PORT")
	if port == "" {
		port = "80"
	}
	control := os.Getenv("CONTROL_PORT")
	if control == "" {
		control = defaultControlPort
	}
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		return healthcheck(port)
	}
	if len(os.Args) == 3 && os.Args[1] == "fail" {
		return failCommand(control, os.Args[2], os.Stdout)
	}
	warm, err := envDuration("WARMUP")
	if err != nil {
		return err
	}
	drain, err := envDuration("DRAIN")
	if err != nil {
		return err
	}
	ln, err := listenSwitch(net.JoinHostPort("", port))
	if err != nil {
		return fmt.Errorf("listen on :%s: %w", port, err)
	}
	fail := &failSwitch{next: newWarmup(warm, newMux()), ln: ln}
	go func() {
		if err := serveControl(fail, control); err != nil {
			fmt.Fprintln(os.Stderr, "testbackend: control listener:", err)
		}
	}()
	srv := &http.Server{
		Handler:           fail,
		ReadHeaderTimeout: 10 * time.Second,
	}
	if err := serve(srv, ln, drain); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("listen on :%s: %w", port, err)
	}
	return nil
}

func newMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/", echo)
	mux.HandleFunc("/sse", sse)
	mux.HandleFunc("/events", events)
	mux.HandleFunc("/ndjson", ndjson)
	mux.Handle("/ws", websocket.Handler(wsEcho))
	mux.HandleFunc("/status/{code}", status)
	mux.HandleFunc("/slow", slow)
	mux.HandleFunc("/hang", hang)
	mux.HandleFunc("/fetch", fetch)
	return mux
}
