package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"golang.org/x/net/websocket"
)

// Echo is the JSON body of "/": what the backend saw of the request.
type Echo struct {
	Method     string              `json:"method"`
	Proto      string              `json:"proto"`
	Host       string              `json:"host"`
	Path       string              `json:"path"`
	RawQuery   string              `json:"raw_query"`
	Headers    map[string][]string `json:"headers"`
	RemoteAddr string              `json:"remote_addr"`
	Hostname   string              `json:"hostname"`
	BodyBytes  int64               `json:"body_bytes"`
}

func echo(w http.ResponseWriter, r *http.Request) {
	n, _ := io.Copy(io.Discard, r.Body)
	host, _ := os.Hostname()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(Echo{
		Method:     r.Method,
		Proto:      r.Proto,
		Host:       r.Host,
		Path:       r.URL.Path,
		RawQuery:   r.URL.RawQuery,
		Headers:    r.Header,
		RemoteAddr: r.RemoteAddr,
		Hostname:   host,
		BodyBytes:  n,
	})
}

func status(w http.ResponseWriter, r *http.Request) {
	code, err := strconv.Atoi(r.PathValue("code"))
	if err != nil || code < 100 || code > 999 {
		http.Error(w, "status must be a number 100-999", http.StatusBadRequest)
		return
	}
	w.WriteHeader(code)
}

func slow(w http.ResponseWriter, r *http.Request) {
	d, ok := duration(w, r, "d", 2*time.Second)
	if !ok {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		echo(w, r)
	case <-r.Context().Done():
	}
}

func hang(_ http.ResponseWriter, r *http.Request) {
	<-r.Context().Done()
}

func wsEcho(ws *websocket.Conn) {
	_, _ = io.Copy(ws, ws)
}

// duration reads query parameter key as a Go duration; on a bad value it answers
// 400 and returns false.
func duration(w http.ResponseWriter, r *http.Request, key string, def time.Duration) (time.Duration, bool) {
	v := r.URL.Query().Get(key)
	if v == "" {
		return def, true
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		http.Error(w, key+" must be a non-negative Go duration", http.StatusBadRequest)
		return 0, false
	}
	return d, true
}

// count reads query parameter key as a non-negative integer; on a bad value it
// answers 400 and returns false.
func count(w http.ResponseWriter, r *http.Request, key string, def int) (int, bool) {
	v := r.URL.Query().Get(key)
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		http.Error(w, key+" must be a non-negative integer", http.StatusBadRequest)
		return 0, false
	}
	return n, true
}
