package discovery

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"os"
	"slices"
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
// cannot be read or parsed keeps the last good entries and reports why.
// Parsing and resolving are ParseRoutesFile's and ResolveStatic's.
type routesFile struct {
	path   string
	lookup LookupFunc // nil: the system resolver

	sum      [sha256.Size]byte
	seen     bool            // sum is the content last parsed (good or bad)
	entries  []StaticEntry   // last good parse
	fileErrs []route.Error   // why the current file cannot be used
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
	if err != nil {
		return f.fail(err)
	}
	f.entries, f.fileErrs = entries, nil
	f.resolve(ctx)
	return true
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
