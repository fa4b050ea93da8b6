package discovery

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// Config configures a Watcher. Zero values get the documented defaults.
type Config struct {
	Docker      DockerAPI // required
	LabelPrefix string    // default "ingress."
	Networks    []string  // network names to reach services on; empty: the overlay networks of the ingress's own container
	// NetworkSetting is how operators set Networks, named in the errors
	// about them (cmd/ingress: its environment variable); default "networks".
	NetworkSetting string
	RoutesFile     string             // optional static routes file, reloaded on change
	Debounce       time.Duration      // events are merged for this long; default 20ms
	Resync         time.Duration      // full resync period (safety net); default 30s
	Logger         zerolog.Logger     // default: disabled
	Publish        func(*route.Table) // called with every new table, only when its content changed
}

// Defaults of Config and the watcher's fixed periods.
const (
	DefaultLabelPrefix = "ingress."
	DefaultDebounce    = 20 * time.Millisecond
	DefaultResync      = 30 * time.Second

	pollPeriod     = time.Second            // routes file check
	taskPollPeriod = 250 * time.Millisecond // tasks of tasks-mode services (other nodes send no event)
	minBackoff     = 100 * time.Millisecond // first reconnect delay
	maxBackoff     = 5 * time.Second        // reconnect delay cap
	connectTimeout = 10 * time.Second       // longest wait for the events stream to open
	callTimeout    = 15 * time.Second       // longest wait for one refresh's API calls
)

// Watcher turns Swarm services (and the static routes file) into route tables.
type Watcher struct {
	cfg    Config
	selfID func() (string, error) // the ingress's own container, when cfg.Networks is empty
	table  atomic.Pointer[route.Table]
}

// NewWatcher checks cfg and returns a Watcher that does nothing until Run.
func NewWatcher(cfg Config) (*Watcher, error) {
	if cfg.Docker == nil {
		return nil, errors.New("discovery: Docker is required")
	}
	if cfg.Debounce < 0 || cfg.Resync < 0 {
		return nil, errors.New("discovery: Debounce and Resync must not be negative")
	}
	if cfg.LabelPrefix == "" {
		cfg.LabelPrefix = DefaultLabelPrefix
	}
	if cfg.Debounce == 0 {
		cfg.Debounce = DefaultDebounce
	}
	if cfg.Resync == 0 {
		cfg.Resync = DefaultResync
	}
	if cfg.Publish == nil {
		cfg.Publish = func(*route.Table) {}
	}
	return &Watcher{cfg: cfg, selfID: onceID(selfContainerID)}, nil
}

// Run watches until ctx ends. It publishes a first table as soon as one is
// built and keeps the last good table while Docker is unreachable. It returns
// nil when ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	newLoop(w).run(ctx)
	return nil
}

// Table returns the last published table (nil before the first).
func (w *Watcher) Table() *route.Table { return w.table.Load() }

// Check builds one table from the current state, for `ingress check`. Errors
// in labels, networks or the routes file are in the table's Errors; an error
// is returned only when Docker cannot be read.
func Check(ctx context.Context, cfg Config) (*route.Table, error) {
	w, err := NewWatcher(cfg)
	if err != nil {
		return nil, err
	}
	l := newLoop(w)
	l.static.check(ctx)
	if err := l.refresh(ctx, levelFull); err != nil {
		return nil, err
	}
	return l.last, nil
}

// onceID remembers the first successful answer of f.
func onceID(f func() (string, error)) func() (string, error) {
	var id atomic.Pointer[string]
	return func() (string, error) {
		if p := id.Load(); p != nil {
			return *p, nil
		}
		s, err := f()
		if err == nil {
			id.Store(&s)
		}
		return s, err
	}
}
