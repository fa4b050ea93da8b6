package main

import (
	"context"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/certs"
	"github.com/swarm-ingress/swarm-ingress/pkg/control"
)

// certsResend is how often a controller re-reads the certificates it serves
// even when nothing signalled a change (a renewal autocert did on its own).
const certsResend = time.Minute

// pushCerts sends the edges the certificates the manager serves, whenever
// one is obtained, a table is published, or certsResend passed.
func (a *app) pushCerts(ctx context.Context) error {
	tick := time.NewTicker(certsResend)
	defer tick.Stop()
	for {
		changed := a.certs.Changed()
		a.control.SetCerts(edgeCerts(a.certs.Served(ctx)))
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-a.kicked:
		case <-tick.C:
		}
	}
}

func edgeCerts(served []certs.Served) []control.Cert {
	out := make([]control.Cert, 0, len(served))
	for _, s := range served {
		out = append(out, control.Cert{Host: s.Host, PEM: s.PEM, NotBefore: s.NotBefore})
	}
	return out
}
