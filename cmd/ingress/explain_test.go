package main

import (
	"bytes"
	"context"
	"flag"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateMatch = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestAdminMatchGolden: GET /api/match answers the explanation as JSON for
// a URL that matches (with the losing and shorter routes named) and for
// one that does not (with the nearest routes), 400 without a usable URL.
func TestAdminMatchGolden(t *testing.T) {
	a := testApp(t)
	a.publish(sampleTable())
	h := a.adminHandler()
	var got bytes.Buffer
	for _, u := range []string{"http://web.example.com/admin/users", "https://web.example.com/x?y=1", "http://jobs.example.com/api/run", "http://jobs.example.com/other"} {
		code, body := get(t, h, "/api/match?url="+url.QueryEscape(u))
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", u, code, body)
		}
		got.WriteString(body)
	}
	file := filepath.Join("testdata", "match.json.golden")
	if *updateMatch {
		if err := os.WriteFile(file, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if got.String() != string(want) {
		t.Errorf("%s differs (run with -update to accept):\n%s", file, got.String())
	}
	for _, q := range []string{"", "?url=", "?url=" + url.QueryEscape("ftp://x/")} {
		if code, _ := get(t, h, "/api/match"+q); code != http.StatusBadRequest {
			t.Errorf("/api/match%s = %d, want 400", q, code)
		}
	}
}

func TestExplainNeedsURL(t *testing.T) {
	var out, errs bytes.Buffer
	err := run(context.Background(), []string{"explain"}, func(string) string { return "" }, &out, &errs)
	if err == nil || !strings.Contains(err.Error(), "give one or more URLs") {
		t.Fatalf("err = %v", err)
	}
}
