// Command proxyprof serves one static route with pkg/proxy exactly as
// `ingress serve` wires it (proxy.New with a JSON access log and a metrics
// registry, proxy.NewServer), plus net/http/pprof on a second loopback
// listener, so that the proxy's CPU and memory can be profiled under the
// bench's load:
//
//	go tool pprof -seconds 10 http://127.0.0.1:18409/debug/pprof/profile
//	go tool pprof http://127.0.0.1:18409/debug/pprof/heap
//	curl http://127.0.0.1:18409/debug/memstats
//
// With -cert and -key it serves HTTPS instead (HTTP/2 by ALPN), to profile
// the TLS and HTTP/2 lines.
//
// It leaves out discovery, certificates and the admin listener.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/swarm-ingress/swarm-ingress/pkg/proxy"
	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "proxyprof:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:18405", "proxy listener (loopback only)")
	pprofAddr := flag.String("pprof", "127.0.0.1:18409", "pprof listener (loopback only)")
	upstream := flag.String("upstream", "127.0.0.1:18401", "upstream IPv4:port")
	host := flag.String("host", "bench.local", "route host")
	logPath := flag.String("log", "", "access log file (empty: discard, like INGRESS_LOG_LEVEL=warn)")
	certFile := flag.String("cert", "", "with -key: serve HTTPS (HTTP/2 and HTTP/1.1 by ALPN) with this PEM certificate")
	keyFile := flag.String("key", "", "PEM key of -cert")
	flag.Parse()

	up, err := netip.ParseAddrPort(*upstream)
	if err != nil {
		return fmt.Errorf("parse -upstream: %w", err)
	}
	var out io.Writer = io.Discard
	if *logPath != "" {
		f, err := os.Create(*logPath)
		if err != nil {
			return fmt.Errorf("open log: %w", err)
		}
		defer f.Close()
		out = f
	}
	log := zerolog.New(out).With().Timestamp().Logger()

	h := proxy.New(proxy.Config{
		Logger:     log.With().Str("component", "proxy").Logger(),
		Registerer: prometheus.NewRegistry(),
	})
	h.SetTable(route.New(route.Snapshot{Generation: 1, UpdatedAt: time.Now(), Routes: []*route.Route{{
		Service: "bench", Name: "default", Hosts: []string{*host}, Path: "/", Port: up.Port(),
		TLS: route.TLSOff, Mode: route.ModeStatic, Upstreams: []netip.AddrPort{up}, Scheme: route.SchemeHTTP,
	}}}))

	ln, err := net.Listen("tcp4", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	pln, err := net.Listen("tcp4", *pprofAddr)
	if err != nil {
		return fmt.Errorf("listen pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/memstats", memStats)
	var tlsConfig *tls.Config
	if *certFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			return fmt.Errorf("load -cert/-key: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	srv := proxy.NewServer(*addr, h, tlsConfig, log)
	psrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 2)
	go func() {
		if tlsConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	go func() { errc <- psrv.Serve(pln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = psrv.Close()
	if err := h.Shutdown(sctx, time.Second, srv); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// memStats prints where the process's memory is: heap, goroutine stacks, and
// the goroutine count, to split RSS per stream into its parts.
func memStats(w http.ResponseWriter, _ *http.Request) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	fmt.Fprintf(w, "goroutines %d\nheap_inuse_kb %d\nheap_objects %d\nstack_inuse_kb %d\nsys_kb %d\nnum_gc %d\n",
		runtime.NumGoroutine(), m.HeapInuse>>10, m.HeapObjects, m.StackInuse>>10, m.Sys>>10, m.NumGC)
}
