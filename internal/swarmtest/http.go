package swarmtest

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"
)

// waitHTTPTimeout bounds WaitHTTP.
const waitHTTPTimeout = 30 * time.Second

// WaitHTTP GETs url every 200ms until it gets an HTTP response with status
// want, and returns that response's body. A task can be running before it
// listens; this bridges the gap. It fails the test after 30s with the last
// status or error. Use it only for loopback or test-network addresses.
func WaitHTTP(t testing.TB, url string, want int) []byte {
	t.Helper()
	return WaitHTTPHost(t, url, "", want)
}

// WaitHTTPHost is WaitHTTP with a Host header (none when host is empty), for
// reaching a route through the ingress.
func WaitHTTPHost(t testing.TB, url, host string, want int) []byte {
	t.Helper()
	return WaitHTTPWithin(t, url, host, want, waitHTTPTimeout)
}

// WaitHTTPWithin is WaitHTTPHost with another bound than 30s, for a path
// known to come back slowly (an overlay after a network partition).
func WaitHTTPWithin(t testing.TB, url, host string, want int, bound time.Duration) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	ticker := time.NewTicker(200 * time.Millisecond)
	defer ticker.Stop()
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatalf("swarmtest: bad url %q: %v", url, err)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := client.Do(req)
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want && rerr == nil {
				return body
			}
			last = resp.Status + ": " + string(body)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("swarmtest: GET %s (Host %q): no %d within %v; last: %s", url, host, want, bound, last)
		case <-ticker.C:
		}
	}
}
