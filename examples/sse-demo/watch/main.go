// Command watch prints the events of a Server-Sent Events stream as each one
// arrives, with the time since the request was sent. The demo uses it to show
// that events pass through the ingress one by one, not buffered.
//
//	go run ./examples/sse-demo/watch -url http://127.0.0.1:8081/events -host sse.localhost -n 5
//
// It first waits (up to -wait) for the URL to answer 200, since a route becomes
// live a moment after the services start.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	url := flag.String("url", "http://127.0.0.1/events", "stream URL")
	host := flag.String("host", "", "Host header to send (the route's ingress.host)")
	n := flag.Int("n", 5, "events to print before stopping")
	wait := flag.Duration("wait", 90*time.Second, "how long to wait for the route to answer 200")
	flag.Parse()
	if err := run(*url, *host, *n, *wait); err != nil {
		fmt.Fprintln(os.Stderr, "watch:", err)
		os.Exit(1)
	}
}

func run(url, host string, n int, wait time.Duration) error {
	resp, start, err := connect(url, host, wait)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	fmt.Printf("%s %s (Host: %s), Content-Type %s\n", resp.Status, url, host, resp.Header.Get("Content-Type"))
	scanner := bufio.NewScanner(resp.Body)
	seen := 0
	for seen < n && scanner.Scan() {
		line := scanner.Text()
		if data, ok := strings.CutPrefix(line, "data:"); ok {
			seen++
			fmt.Printf("+%6.3fs  event %d: %s\n", time.Since(start).Seconds(), seen, strings.TrimSpace(data))
		}
	}
	if seen < n {
		return fmt.Errorf("stream ended after %d of %d events: %v", seen, n, scanner.Err())
	}
	return nil
}

// connect retries until the URL answers 200 or wait has passed, and returns
// the open response and when its request was sent.
func connect(url, host string, wait time.Duration) (*http.Response, time.Time, error) {
	deadline := time.Now().Add(wait)
	last := errors.New("no attempt made")
	for attempt := 1; time.Now().Before(deadline); attempt++ {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("request: %w", err)
		}
		if host != "" {
			req.Host = host
		}
		req.Header.Set("Accept", "text/event-stream")
		start := time.Now()
		// The header timeout only bounds waiting for the response to begin; the
		// stream itself may then run as long as it likes.
		client := &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: 5 * time.Second}}
		resp, err := client.Do(req)
		if err == nil && resp.StatusCode == http.StatusOK {
			return resp, start, nil
		}
		if err == nil {
			last = fmt.Errorf("status %s", resp.Status)
			resp.Body.Close()
		} else {
			last = err
		}
		if attempt == 1 || attempt%10 == 0 {
			fmt.Fprintf(os.Stderr, "waiting for the route (%v)\n", last)
		}
		time.Sleep(time.Second)
	}
	return nil, time.Time{}, fmt.Errorf("%s did not answer 200 within %v: %w", url, wait, last)
}
