// Command idleconns measures a proxy's memory per idle keep-alive client
// connection: it samples the proxy's resident memory (VmRSS of -pids), opens
// -n connections (HTTPS with -tls), sends one GET on each and reads the
// response, so that every connection is a served keep-alive connection, then
// leaves them all idle for -settle and samples again:
// (RSS idle with n connections - RSS before) / n.
//
// The last line of output is machine-readable: "RESULT key=value ...".
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarm-ingress/swarm-ingress/bench/internal/nofile"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18406", "proxy address (loopback only)")
	host := flag.String("host", "localhost", "Host header (and SNI with -tls)")
	path := flag.String("path", "/small", "request path")
	n := flag.Int("n", 10000, "connections")
	conc := flag.Int("c", 32, "connections opened at once")
	useTLS := flag.Bool("tls", false, "HTTPS (TLS 1.3, X25519, certificate not verified)")
	settle := flag.Duration("settle", 5*time.Second, "idle time before the second sample")
	pidList := flag.String("pids", "", "comma-separated pids of the proxy (RSS is summed)")
	flag.Parse()
	if !strings.HasPrefix(*addr, "127.") {
		fail(fmt.Errorf("-addr must be a loopback address"))
	}
	var pids []int
	for _, p := range strings.Split(*pidList, ",") {
		if p = strings.TrimSpace(p); p != "" {
			pid, err := strconv.Atoi(p)
			if err != nil {
				fail(fmt.Errorf("-pids: %w", err))
			}
			pids = append(pids, pid)
		}
	}
	if len(pids) == 0 {
		fail(fmt.Errorf("-pids is required"))
	}
	if err := nofile.Raise(); err != nil {
		fail(err)
	}
	var tcfg *tls.Config
	if *useTLS {
		tcfg = &tls.Config{
			ServerName: *host, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13,
			CurvePreferences: []tls.CurveID{tls.X25519}, NextProtos: []string{"http/1.1"},
		}
	}
	req := "GET " + *path + " HTTP/1.1\r\nHost: " + *host + "\r\nUser-Agent: idleconns\r\n\r\n"

	before, err := rss(pids)
	if err != nil {
		fail(err)
	}
	conns := make([]net.Conn, *n)
	var failed atomic.Int64
	var firstErr atomic.Pointer[string]
	next := atomic.Int64{}
	start := time.Now()
	var wg sync.WaitGroup
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= *n {
					return
				}
				c, err := open(*addr, tcfg, req)
				if err != nil {
					failed.Add(1)
					msg := err.Error()
					firstErr.CompareAndSwap(nil, &msg)
					continue
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	opened := *n - int(failed.Load())
	fmt.Printf("opened %d connections in %.1fs, %d failed\n", opened, time.Since(start).Seconds(), failed.Load())
	if e := firstErr.Load(); e != nil {
		fmt.Printf("first error: %s\n", *e)
	}
	time.Sleep(*settle)
	after, err := rss(pids)
	if err != nil {
		fail(err)
	}
	// Are they still open? A proxy that closed idle connections early has
	// not held them: count those as errors.
	closed := 0
	for _, c := range conns {
		if c == nil {
			continue
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
		var b [1]byte
		if _, err := c.Read(b[:]); err != nil && !isTimeout(err) {
			closed++
		}
		c.Close()
	}
	held := opened - closed
	kb := "-"
	if held > 0 {
		kb = fmt.Sprintf("%.1f", float64(after-before)/float64(held))
	}
	fmt.Printf("proxy RSS %d kB before, %d kB with %d idle connections (after %v): %s kB per connection; %d closed by the proxy\n",
		before, after, held, *settle, kb, closed)
	fmt.Printf("RESULT conns=%d kb_per_conn=%s rss_before_kb=%d rss_after_kb=%d errors=%d\n",
		held, kb, before, after, int(failed.Load())+closed)
}

func open(addr string, tcfg *tls.Config, req string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	var c net.Conn
	var err error
	if tcfg != nil {
		c, err = tls.DialWithDialer(&d, "tcp4", addr, tcfg)
	} else {
		c, err = d.Dial("tcp4", addr)
	}
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, err
	}
	// The bufio.Reader is dropped after the response: a keep-alive response
	// with Content-Length leaves nothing behind in it.
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 1024), nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || resp.Close {
		c.Close()
		return nil, fmt.Errorf("status %d, close %v, %v", resp.StatusCode, resp.Close, err)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// rss sums VmRSS (kB) of pids.
func rss(pids []int) (int64, error) {
	var total int64
	for _, pid := range pids {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return 0, err
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		found := false
		for sc.Scan() {
			if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:")); ok {
				f := bytes.Fields(v)
				if len(f) > 0 {
					kb, err := strconv.ParseInt(string(f[0]), 10, 64)
					if err != nil {
						return 0, err
					}
					total += kb
					found = true
				}
			}
		}
		if !found {
			return 0, fmt.Errorf("no VmRSS for pid %d", pid)
		}
	}
	return total, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "idleconns:", err)
	os.Exit(1)
}
