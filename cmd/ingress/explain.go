package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"

	"github.com/swarm-ingress/swarm-ingress/pkg/proxy"
)

// runExplain reads the route table as `ingress check` does (Docker and the
// routes file) and explains how it serves each URL argument. --json prints
// what GET /api/match answers. It fails when a URL cannot be parsed.
func runExplain(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	asJSON := false
	var rest []string
	for _, a := range args { // --json may stand anywhere; the settings' flags parse the rest
		if a == "--json" || a == "-json" {
			asJSON = true
			continue
		}
		rest = append(rest, a)
	}
	values, urls, err := loadSettings("ingress explain", rest, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(urls) == 0 {
		return errors.New("explain: give one or more URLs, e.g. ingress explain https://app.example.com/api/x")
	}
	table, err := readTable(ctx, values, stderr)
	if err != nil {
		return err
	}
	var out []*proxy.Explanation
	for i, u := range urls {
		e, err := proxy.Explain(table, u)
		if err != nil {
			return fmt.Errorf("explain %s: %w", u, err)
		}
		out = append(out, e)
		if !asJSON {
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			e.WriteText(stdout)
		}
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if len(out) == 1 {
			return enc.Encode(out[0])
		}
		return enc.Encode(out)
	}
	return nil
}

// match serves GET /api/match?url=...: the explanation as JSON, from the
// table in use; 400 when the URL is missing or cannot be parsed.
func (ad admin) match(w http.ResponseWriter, r *http.Request) {
	u := r.URL.Query().Get("url")
	if u == "" {
		plain(w, http.StatusBadRequest, "give the URL to explain: /api/match?url=https://app.example.com/path")
		return
	}
	e, err := proxy.Explain(ad.table(), u)
	if err != nil {
		plain(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, e)
}
