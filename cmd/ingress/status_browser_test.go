package main

import (
	"context"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestStatusPageInBrowser loads the status page in headless Chromium and
// reads what a person would see: the counts, the route rows and the error.
func TestStatusPageInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test; skipped with -short")
	}
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: run scripts/ensure-chromium.sh (make test does)")
	}
	a := testApp(t)
	a.publish(sampleTable())
	srv := httptest.NewServer(a.adminHandler())
	defer srv.Close()

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.Headless,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-gpu", true),
		chromedp.UserDataDir(t.TempDir()))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("routes"))); err != nil {
		t.Fatalf("browser: %v", err)
	}
	text := func(id string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
		if err != nil {
			t.Fatalf("read #%s: %v", id, err)
		}
		return s
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	ready, routes, errs := text("ready"), text("route-count"), text("error-count")
	routesText, errorsText := text("routes"), text("errors")
	if title != "swarm-ingress status" || ready != "ready" || routes != "3" || errs != "1" {
		t.Fatalf("title %q ready %q routes %q errors %q", title, ready, routes, errs)
	}
	for _, want := range []string{"web.example.com", "10.0.1.5:8080", "jobs.example.com", "/api", "no running task", "always", "blocked, answers 503"} {
		if !strings.Contains(routesText, want) {
			t.Errorf("routes table lacks %q:\n%s", want, routesText)
		}
	}
	if !strings.Contains(errorsText, "ingress.port") || !strings.Contains(errorsText, "broken") {
		t.Errorf("errors table = %q", errorsText)
	}
}
