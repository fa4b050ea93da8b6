// Command ssebench opens many Server-Sent Events streams over HTTP/1.1 (one
// connection each) through a proxy and measures, for every event received in
// a measurement window, the delay between the backend's send timestamp (the
// event's data, Unix nanoseconds) and its arrival here. It prints p50, p99
// and max, the errors, and the proxy's resident memory per open stream:
// (sum of VmRSS of -pids with the streams open - the same before) / streams.
//
// With -tls the streams are HTTPS (TLS 1.3, one handshake per stream).
//
// With -first-event it opens one stream instead and reports how long the
// first event took to arrive, bounded by -timeout (the buffering demo).
//
// The last line of output is machine-readable: "RESULT key=value ...".
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/swarm-ingress/swarm-ingress/bench/internal/nofile"
)

type config struct {
	addr       string        // host:port to dial (loopback)
	host       string        // Host header
	path       string        // request path
	streams    int           // streams to open
	ramp       time.Duration // spread the opening over this long
	settle     time.Duration // wait after opening before measuring
	window     time.Duration // measurement window
	stallAfter time.Duration // a stream silent for longer than this is an error
	pids       []int         // processes whose RSS is the proxy's
	firstEvent bool
	timeout    time.Duration // -first-event: longest wait
	tls        bool          // HTTPS: TLS 1.3 with SNI -host, certificate not verified
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "ssebench:", err)
		os.Exit(2)
	}
	if err := nofile.Raise(); err != nil {
		fmt.Fprintln(os.Stderr, "ssebench:", err)
		os.Exit(1)
	}
	if cfg.firstEvent {
		err = runFirstEvent(cfg)
	} else {
		err = runStreams(cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ssebench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	var cfg config
	var pids string
	fs := flag.NewFlagSet("ssebench", flag.ContinueOnError)
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:18002", "proxy address to dial (loopback only)")
	fs.StringVar(&cfg.host, "host", "bench.local", "Host header")
	fs.StringVar(&cfg.path, "path", "/sse", "request path")
	fs.IntVar(&cfg.streams, "n", 2000, "concurrent streams")
	fs.DurationVar(&cfg.ramp, "ramp", 3*time.Second, "open the streams evenly over this long")
	fs.DurationVar(&cfg.settle, "settle", 2*time.Second, "wait after the last stream opened before measuring")
	fs.DurationVar(&cfg.window, "d", 20*time.Second, "measurement window")
	fs.DurationVar(&cfg.stallAfter, "stall", 3*time.Second, "a stream with no event for this long in the window is an error")
	fs.StringVar(&pids, "pids", "", "comma-separated pids of the proxy (RSS is summed)")
	fs.BoolVar(&cfg.firstEvent, "first-event", false, "open one stream and report the time to its first event")
	fs.DurationVar(&cfg.timeout, "timeout", 5*time.Second, "with -first-event: give up after this long")
	fs.BoolVar(&cfg.tls, "tls", false, "HTTPS (TLS 1.3, X25519, SNI = -host; the bench's self-signed certificate is not verified)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if !isLoopback(cfg.addr) {
		return cfg, fmt.Errorf("-addr %q: only loopback addresses are allowed", cfg.addr)
	}
	if cfg.streams < 1 {
		return cfg, fmt.Errorf("-n %d: need at least one stream", cfg.streams)
	}
	for _, p := range strings.Split(pids, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		pid, err := strconv.Atoi(p)
		if err != nil {
			return cfg, fmt.Errorf("-pids %q: %w", pids, err)
		}
		cfg.pids = append(cfg.pids, pid)
	}
	return cfg, nil
}

func isLoopback(addr string) bool {
	return strings.HasPrefix(addr, "127.") || strings.HasPrefix(addr, "[::1]:") || strings.HasPrefix(addr, "localhost:")
}
