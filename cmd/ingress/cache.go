package main

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/docker/client"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/acme/autocert"

	"github.com/swarm-ingress/swarm-ingress/pkg/certs"
	"github.com/swarm-ingress/swarm-ingress/pkg/certs/swarmcache"
)

// newCache returns the ACME cache and cross-instance lock of INGRESS_CACHE.
// For "dir" both are nil: the certificate manager uses a directory cache in
// INGRESS_DATA_DIR and locks within the process. For "swarm" the key is
// loaded and checked against the Swarm now, so a wrong key stops the start.
func newCache(cfg Config, docker *client.Client, log zerolog.Logger) (autocert.Cache, certs.Locker, error) {
	if cfg.Cache != "swarm" {
		return nil, nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	log = log.With().Str("component", "swarmcache").Logger()
	store, err := swarmcache.New(ctx, swarmcache.Config{Client: docker, KeyFile: cfg.CacheKeyFile, Logger: log})
	if err != nil {
		return nil, nil, fmt.Errorf("INGRESS_CACHE=swarm (key INGRESS_CACHE_KEY_FILE=%q): %w", cfg.CacheKeyFile, err)
	}
	return store, swarmcache.NewLocker(swarmcache.LockerConfig{Client: docker, Logger: log}), nil
}

// pruneEvery is how often the Swarm cache drops entries no route needs.
const pruneEvery = 10 * time.Minute

// pruneCache removes, every pruneEvery, the Swarm cache entries of hosts no
// current tls=auto route names, superseded versions and stale challenge
// tokens. Several instances pruning at once is harmless. It returns when ctx ends.
func (a *app) pruneCache(ctx context.Context, store *swarmcache.Store) error {
	tick := time.NewTicker(pruneEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		t := a.table.Load()
		if t == nil {
			continue
		}
		n, err := store.Prune(ctx, swarmcache.KeepHosts(t.TLSHost))
		if err != nil {
			a.log.Warn().Err(err).Msg("prune swarm cache")
			continue
		}
		if n > 0 {
			a.log.Info().Int("removed", n).Msg("pruned swarm cache")
		}
	}
}
