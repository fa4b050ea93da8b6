package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"
)

// fetch GETs ?url= and relays the status, Content-Type and body. It exists so a
// test can check from inside a Docker network that another task answers. The
// target must be an IPv4 literal inside $FETCH_ALLOW (or loopback): the backend
// never reaches anything else.
func fetch(w http.ResponseWriter, r *http.Request) {
	target, err := url.Parse(r.URL.Query().Get("url"))
	if err != nil || target.Scheme != "http" {
		http.Error(w, "url must be an http:// URL", http.StatusBadRequest)
		return
	}
	addr, err := netip.ParseAddr(target.Hostname())
	if err != nil || !addr.Is4() {
		http.Error(w, "url host must be an IPv4 literal", http.StatusBadRequest)
		return
	}
	if !allowed(addr) {
		http.Error(w, fmt.Sprintf("%s is not in FETCH_ALLOW", addr), http.StatusForbidden)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		http.Error(w, "bad url", http.StatusBadRequest)
		return
	}
	client := &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, address string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "tcp4", address)
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		http.Error(w, "fetch failed: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// allowed reports whether addr is loopback or inside one of the CIDRs listed in
// $FETCH_ALLOW (comma-separated; a test sets it to its own network's subnet).
// Without $FETCH_ALLOW only loopback is allowed.
func allowed(addr netip.Addr) bool {
	if addr.IsLoopback() {
		return true
	}
	for _, s := range strings.Split(os.Getenv("FETCH_ALLOW"), ",") {
		prefix, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err == nil && prefix.Masked().Contains(addr) {
			return true
		}
	}
	return false
}
