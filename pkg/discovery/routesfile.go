package discovery

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// routesFileService is the Service of errors about the static routes file.
const routesFileService = "routes-file"

// resolveTimeout bounds the name lookups of one resolution of the file.
const resolveTimeout = 5 * time.Second

// routesFile follows the static routes file by content: it is read at every
// check (once a second) and parsed again only when its bytes change, which
// also catches Swarm replacing a config through a symlink swap. A file that
// cannot be read or parsed keeps the last good entries and reports why; a
// bad service in a good file is reported, and keeps its last good version
// if it had one, while the other services are used.
// Parsing and resolving are ParseRoutesFile's and ResolveStatic's.
type routesFile struct {
	path   string
	lookup LookupFunc // nil: the system resolver

	sum      [sha256.Size]byte
	seen     bool            // sum is the content last parsed (good or bad)
	entries  []StaticEntry   // last good entries
	fileErrs []route.Error   // why the current file, or some of its services, cannot be used
	services []StaticService // entries resolved
	resErrs  []route.Error   // entries that could not be resolved
}

func newRoutesFile(path string, lookup LookupFunc) *routesFile {
	return &routesFile{path: path, lookup: lookup}
}

// check reads the file and reports whether its services or errors changed.
func (f *routesFile) check(ctx context.Context) bool {
	if f.path == "" {
		return false
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		f.seen = false // parse again when it comes back, even unchanged
		return f.fail(fmt.Errorf("read routes file: %w", err))
	}
	sum := sha256.Sum256(data)
	if f.seen && sum == f.sum {
		return false
	}
	f.sum, f.seen = sum, true
	entries, err := ParseRoutesFile(bytes.NewReader(data))
	bad, ok := entryErrors(err)
	if !ok {
		return f.fail(err)
	}
	errs := f.reportBad(bad) // before keepLastGood replaces f.entries
	f.entries, f.fileErrs = f.keepLastGood(entries, bad), errs
	f.resolve(ctx)
	return true
}

// entryErrors returns the *EntryError problems joined in err, and false
// when err holds a problem of the whole file.
func entryErrors(err error) ([]*EntryError, bool) {
	if err == nil {
		return nil, true
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return nil, false
	}
	var bad []*EntryError
	for _, e := range joined.Unwrap() {
		ee, ok := e.(*EntryError)
		if !ok {
			return nil, false
		}
		bad = append(bad, ee)
	}
	return bad, true
}

// keepLastGood returns the good entries of the new file plus, for each bad
// service that had a good version before, that version: an edit that breaks
// one service leaves it serving as it was (docs/labels.md, the routes file).
func (f *routesFile) keepLastGood(good []StaticEntry, bad []*EntryError) []StaticEntry {
	out := slices.Clone(good)
	for _, b := range bad {
		if b.Name == "" {
			continue
		}
		if i := slices.IndexFunc(f.entries, func(e StaticEntry) bool { return e.Name == b.Name }); i >= 0 {
			out = append(out, f.entries[i])
		}
	}
	slices.SortFunc(out, func(a, b StaticEntry) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// reportBad reports each bad service under its own name (the routes file's
// when it has none), with the file and line as the label.
func (f *routesFile) reportBad(bad []*EntryError) []route.Error {
	var errs []route.Error
	for _, b := range bad {
		service, what := b.Name, "it is not served"
		if service == "" {
			service = routesFileService
		} else if slices.ContainsFunc(f.entries, func(e StaticEntry) bool { return e.Name == b.Name }) {
			what = "its last good version keeps serving"
		}
		errs = append(errs, route.Error{
			Service: service,
			Label:   fmt.Sprintf("%s:%d", f.path, b.Line),
			Error:   fmt.Sprintf("%s (%s)", strings.ReplaceAll(b.Err.Error(), "\n", "; "), what),
		})
	}
	return errs
}

// resolve looks the entries' upstream names up again and reports whether the
// services or errors changed.
func (f *routesFile) resolve(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	services, errs := ResolveStatic(ctx, f.entries, f.lookup)
	changed := !slices.EqualFunc(services, f.services, sameStatic) || !slices.Equal(errs, f.resErrs)
	f.services, f.resErrs = services, errs
	return changed
}

// fail records err as the file's problem, keeping the last good entries.
func (f *routesFile) fail(err error) bool {
	errs := []route.Error{{Service: routesFileService, Label: f.path, Error: err.Error()}}
	if slices.Equal(errs, f.fileErrs) {
		return false
	}
	f.fileErrs = errs
	return true
}

// errors lists the file's problems and those of its entries.
func (f *routesFile) errors() []route.Error {
	return append(slices.Clip(f.fileErrs), f.resErrs...)
}

func sameStatic(a, b StaticService) bool {
	return a.Name == b.Name && slices.Equal(a.Upstreams, b.Upstreams) && maps.Equal(a.Labels, b.Labels)
}
