package main

import (
	"context"
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
		return nil, nil, err
	}
	return store, swarmcache.NewLocker(swarmcache.LockerConfig{Client: docker, Logger: log}), nil
}
