package discovery

// API STUB written by the lead: the signatures below are the contract that
// cmd/ingress uses. The discovery owner replaces the bodies (and may split the
// file), keeping these names and meanings.

import (
	"context"
	"errors"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// Config configures a Watcher. Zero values get the documented defaults.
type Config struct {
	Docker      DockerAPI          // required
	LabelPrefix string             // default "ingress."
	Networks    []string           // network names to reach services on; empty: the overlay networks of the ingress's own container
	RoutesFile  string             // optional static routes file, reloaded on change
	Debounce    time.Duration      // events are merged for this long; default 20ms
	Resync      time.Duration      // full resync period (safety net); default 30s
	Logger      zerolog.Logger     // default: disabled
	Publish     func(*route.Table) // called with every new table, only when its content changed
}

// Watcher turns Swarm services (and the static routes file) into route tables.
type Watcher struct{ cfg Config }

// NewWatcher checks cfg and returns a Watcher that does nothing until Run.
func NewWatcher(cfg Config) (*Watcher, error) {
	if cfg.Docker == nil {
		return nil, errors.New("discovery: Docker is required")
	}
	return &Watcher{cfg: cfg}, nil
}

// Run watches until ctx ends. It publishes a first table as soon as one is
// built and keeps the last good table while Docker is unreachable.
func (w *Watcher) Run(ctx context.Context) error { <-ctx.Done(); return nil }

// Table returns the last published table (nil before the first).
func (w *Watcher) Table() *route.Table { return nil }

// Check builds one table from the current state, for `ingress check`.
func Check(ctx context.Context, cfg Config) (*route.Table, error) { return nil, errors.New("not implemented") }
