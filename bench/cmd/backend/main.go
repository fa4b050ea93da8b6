// Command backend is the upstream for the benchmarks: a small GET handler
// and a Server-Sent Events endpoint that sends one event per interval per
// stream, each event carrying its send time in Unix nanoseconds so that the
// client can compute the delay the proxy added.
//
//	GET /small  -> 200 "hello, bench\n" (keep-alive friendly, Content-Length set)
//	GET /text   -> 200 text/html, 16 KiB of compressible page text (the
//	               compression line); the proxy compresses, the backend does not
//	GET /<p>/small, /<p>/text -> the same, for routes on a path prefix
//	GET /sse    -> text/event-stream, first event at once, then one per -interval
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/swarm-ingress/swarm-ingress/bench/internal/nofile"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "backend:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:18001", "listen address (loopback only)")
	interval := flag.Duration("interval", time.Second, "time between SSE events on one stream")
	flag.Parse()

	if err := nofile.Raise(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp4", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /small", small)
	mux.HandleFunc("GET /{p}/small", small)
	mux.HandleFunc("GET /text", text)
	mux.HandleFunc("GET /{p}/text", text)
	mux.HandleFunc("GET /sse", func(w http.ResponseWriter, r *http.Request) { sse(w, r, *interval) })
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(os.Stderr, "backend: ", 0),
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

var smallBody = []byte("hello, bench\n")

func small(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	h["Content-Length"] = []string{strconv.Itoa(len(smallBody))}
	_, _ = w.Write(smallBody)
}

// textBody is a page of HTML-like text: varied enough that gzip level 1
// compresses it about as much as a real page (a few times), not to nothing.
var textBody = func() []byte {
	words := strings.Fields("the ingress routes each request to a task of the service " +
		"named by its labels while certificates renew in the background and streams " +
		"stay open across table swaps with health checks ejection and weighted splits")
	var b bytes.Buffer
	b.WriteString("<!doctype html>\n<html><head><title>bench</title></head><body>\n")
	x := uint32(2463534242)
	for n := 0; b.Len() < 16<<10-64; n++ {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		if n%12 == 0 {
			fmt.Fprintf(&b, "</p>\n<p id=\"p%d\" class=\"c%d\">", n, x%97)
		}
		b.WriteString(words[x%uint32(len(words))])
		fmt.Fprintf(&b, " %d ", x%1000)
	}
	b.WriteString("</p></body></html>\n")
	return b.Bytes()
}()

func text(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h["Content-Type"] = []string{"text/html; charset=utf-8"}
	h["Content-Length"] = []string{strconv.Itoa(len(textBody))}
	_, _ = w.Write(textBody)
}

// sse writes "id: N" and "data: <unix ns>" events until the client goes away.
func sse(w http.ResponseWriter, r *http.Request, interval time.Duration) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)

	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	buf := make([]byte, 0, 64)
	for seq := 0; ; seq++ {
		buf = append(buf[:0], "id: "...)
		buf = strconv.AppendInt(buf, int64(seq), 10)
		buf = append(buf, "\ndata: "...)
		buf = strconv.AppendInt(buf, time.Now().UnixNano(), 10)
		buf = append(buf, "\n\n"...)
		if _, err := w.Write(buf); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-ticker.C:
		}
	}
}
