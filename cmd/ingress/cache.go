package main

import (
	"errors"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/acme/autocert"

	"github.com/swarm-ingress/swarm-ingress/pkg/certs"
	"github.com/swarm-ingress/swarm-ingress/pkg/discovery"
)

// newCache returns the ACME cache and cross-instance lock of INGRESS_CACHE.
// For "dir" both are nil: the certificate manager uses a directory cache in
// INGRESS_DATA_DIR and locks within the process.
func newCache(cfg Config, docker discovery.DockerAPI, log zerolog.Logger) (autocert.Cache, certs.Locker, error) {
	if cfg.Cache != "swarm" {
		return nil, nil, nil
	}
	return nil, nil, errors.New("INGRESS_CACHE=swarm: not wired yet")
}
