// Command tlsconns measures new TLS connections per second through a proxy:
// each connection does a full TLS 1.3 handshake (no session cache, no
// tickets, so never a resumption), sends one GET with "Connection: close" and
// reads the response to its end. -c workers loop for -d. The server's work per
// connection is then one full handshake (an ECDSA P-256 signature and an
// X25519 exchange), one proxied request and a close.
//
// The last line of output is machine-readable: "RESULT key=value ...".
package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18406", "proxy HTTPS address (loopback only)")
	host := flag.String("host", "localhost", "SNI and Host header")
	path := flag.String("path", "/small", "request path")
	conc := flag.Int("c", 16, "concurrent connections")
	dur := flag.Duration("d", 10*time.Second, "duration")
	flag.Parse()
	if !strings.HasPrefix(*addr, "127.") {
		fmt.Fprintln(os.Stderr, "tlsconns: -addr must be a loopback address")
		os.Exit(2)
	}
	cfg := &tls.Config{
		ServerName:         *host,
		InsecureSkipVerify: true, // the bench's own self-signed certificate
		MinVersion:         tls.VersionTLS13,
		// X25519 alone, as wrk and h2load (OpenSSL 3.0) offer: no peer pays
		// for a post-quantum key share that the others are not asked for.
		CurvePreferences:       []tls.CurveID{tls.X25519},
		SessionTicketsDisabled: true,
		ClientSessionCache:     nil,
		NextProtos:             []string{"http/1.1"},
	}
	req := "GET " + *path + " HTTP/1.1\r\nHost: " + *host + "\r\nConnection: close\r\nUser-Agent: tlsconns\r\n\r\n"

	var ok, failed, resumed atomic.Int64
	var firstErr atomic.Pointer[string]
	deadline := time.Now().Add(*dur)
	start := time.Now()
	var wg sync.WaitGroup
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				r, err := one(*addr, cfg, req)
				switch {
				case err != nil:
					failed.Add(1)
					msg := err.Error()
					firstErr.CompareAndSwap(nil, &msg)
				case r:
					resumed.Add(1)
				default:
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	n := ok.Load()
	if e := firstErr.Load(); e != nil {
		fmt.Printf("first error: %s\n", *e)
	}
	fmt.Printf("%d full handshakes + GET in %.1fs (%d workers): %.0f/s, %d errors, %d resumed\n",
		n, el, *conc, float64(n)/el, failed.Load(), resumed.Load())
	fmt.Printf("RESULT conns=%d rate=%.0f errors=%d resumed=%d\n", n, float64(n)/el, failed.Load(), resumed.Load())
}

// one does a handshake, a GET and reads the response; it reports whether the
// session was resumed (it must never be).
func one(addr string, cfg *tls.Config, req string) (bool, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(&d, "tcp4", addr, cfg)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		return false, err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 2048), nil)
	if err != nil {
		return false, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return false, err
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("status %d", resp.StatusCode)
	}
	return conn.ConnectionState().DidResume, nil
}
