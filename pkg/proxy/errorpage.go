package proxy

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Error pages and maintenance (labels error_page.<code>, maintenance;
// docs/labels.md, "Error pages and maintenance").
//
// A route's page for 502, 503 or 504 replaces the short plain-text body of
// the errors the ingress answers itself for that route (upstream down or
// refusing, no upstream, header timeout, maintenance, an unusable auth
// file or auth service); a 5xx the upstream sends is passed on as it is,
// like Nginx without proxy_intercept_errors. A page from a file is read
// like an htpasswd (authfile.go: when first needed, again when it
// changes). A page from a URL is fetched when first needed, with a
// pageFetchTimeout, and kept for pageKeep; a failed fetch is retried after
// pageRetry. Whenever a page cannot be had, the plain-text body is
// answered: an error page never turns one error into another.

const (
	pageFetchTimeout = 2 * time.Second
	pageKeep         = time.Minute
	pageRetry        = 10 * time.Second

	// maintenanceRetryAfter is the Retry-After of a route in maintenance.
	maintenanceRetryAfter = "120"
)

// page is an error page: its body and Content-Type.
type page struct {
	body        []byte
	contentType string
}

// pageSource is where one page comes from: a file or a URL.
type pageSource interface {
	get(now time.Time) (page, error)
}

// filePage is a page read from a file; the type comes from its extension.
func newFilePage(path string, log zerolog.Logger) *polledFile[page] {
	ct := mime.TypeByExtension(filepath.Ext(path))
	if ct == "" {
		ct = "text/html; charset=utf-8"
	}
	return newPolledFile(path, "error_page", func(b []byte) (page, error) {
		return page{body: b, contentType: ct}, nil
	}, log)
}

// urlPage is a page fetched from a URL.
type urlPage struct {
	url    string
	client *http.Client
	log    zerolog.Logger

	mu      sync.Mutex
	fetched time.Time
	val     page
	err     error
}

func (u *urlPage) get(now time.Time) (page, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	age := now.Sub(u.fetched)
	if !u.fetched.IsZero() && age >= 0 && (u.err == nil && age < pageKeep || u.err != nil && age < pageRetry) {
		return u.val, u.err
	}
	u.fetched = now
	p, err := u.fetch()
	if err != nil {
		if u.err == nil {
			u.log.Error().Str(fieldKind, "error_page").Str(fieldAuthURL, u.url).Err(err).Msg("error page unavailable: the plain-text body is answered")
		}
		u.err = err // the last good page, if any, is kept
		if u.val.body != nil {
			return u.val, nil
		}
		return page{}, err
	}
	u.val, u.err = p, nil
	return p, nil
}

func (u *urlPage) fetch() (page, error) {
	ctx, cancel := context.WithTimeout(context.Background(), pageFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.url, nil)
	if err != nil {
		return page{}, err
	}
	res, err := u.client.Do(req)
	if err != nil {
		return page{}, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return page{}, fmt.Errorf("%s answered %d", u.url, res.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxPolledFile+1))
	if err != nil {
		return page{}, err
	}
	if len(body) > maxPolledFile {
		return page{}, fmt.Errorf("%s is larger than %d bytes", u.url, maxPolledFile)
	}
	ct := res.Header.Get("Content-Type")
	if ct == "" {
		ct = "text/html; charset=utf-8"
	}
	return page{body: body, contentType: ct}, nil
}

// writePage answers code with the page of src, reporting false (nothing
// written) when the page cannot be had.
func writePage(w http.ResponseWriter, code int, src pageSource, now time.Time) bool {
	if src == nil {
		return false
	}
	p, err := src.get(now)
	if err != nil || p.body == nil {
		return false
	}
	h := w.Header()
	h.Set("Content-Type", p.contentType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	w.WriteHeader(code)
	_, _ = w.Write(p.body)
	return true
}

// errorPage answers code with the route's page for it, if it has one.
func (rs *routeState) errorPage(w http.ResponseWriter, code int) bool {
	src, ok := rs.files.pages[code]
	return ok && writePage(w, code, src, rs.h.clock())
}

// maintenance answers a route in maintenance: 503, Retry-After and the
// route's 503 page.
func (rs *routeState) maintenance(ex *exchange) {
	ex.Header().Set("Retry-After", maintenanceRetryAfter)
	rs.writeError(ex, http.StatusServiceUnavailable)
}

// writeNotFound answers 404 for a request no route serves: the page of
// Config.NotFoundPage when set and readable, else the plain text.
func (h *Handler) writeNotFound(w http.ResponseWriter) {
	if h.notFound == nil || !writePage(w, http.StatusNotFound, h.notFound, h.clock()) {
		writeError(w, http.StatusNotFound)
	}
}
