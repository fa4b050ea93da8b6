package swarmcache

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/swarm-ingress/swarm-ingress/internal/pebbletest"
	"github.com/swarm-ingress/swarm-ingress/pkg/certs"
)

// Three instances share one Swarm cache and lock; only instance-0's table
// routes the host, so it places the order, and Pebble sends every
// validation to instance-2, whose table routes nothing. The pending
// challenge is answered from the shared cache whatever that table says
// (issue 11: a validation may reach any node): one order, validated with
// the pinned challenge type (Pebble's port of the other type reaches
// nothing), and the certificate is issued. Each type on its own.
func TestMultiInstanceValidationWithoutRoute(t *testing.T) {
	for _, typ := range []string{certs.ChallengeHTTP01, certs.ChallengeTLSALPN01} {
		t.Run(typ, func(t *testing.T) {
			e := newEnv(t)
			keyFile := newKeyFile(t)
			const host = "noroute.swarm-ingress.test"
			sw := newSwitch(t)
			pc := pebbletest.Config{TLSPort: sw.port()} // HTTPPort: a port where nothing listens
			if typ == certs.ChallengeHTTP01 {
				pc = pebbletest.Config{HTTPPort: sw.port()}
			}
			p := pebbletest.New(t, pc)

			var instances []*instance
			for i := range 3 {
				table := tlsTable()
				if i == 0 {
					table = tlsTable(host)
				}
				instances = append(instances, e.startInstanceWith(t, fmt.Sprintf("instance-%d", i), keyFile, p, 30*time.Second, table, typ))
			}
			var mu sync.Mutex
			sent := 0
			sw.pick = func() string {
				mu.Lock()
				defer mu.Unlock()
				sent++
				if typ == certs.ChallengeHTTP01 {
					return instances[2].httpAddr
				}
				return instances[2].tlsAddr
			}
			began := time.Now()
			sw.start()

			roots := p.IssuerRoots(t)
			l := leaf(t, instances[0].tlsAddr, host, roots)
			took := time.Since(began)
			mu.Lock()
			n := sent
			mu.Unlock()
			if n == 0 {
				t.Error("no validation connection reached the instance without the route")
			}
			if got := p.Orders(); got != 1 {
				t.Errorf("Pebble saw %d orders, want 1", got)
			}
			v := p.Validations()
			if v.Valid != 1 || v.Invalid != 0 {
				t.Errorf("Pebble made %d authorizations valid and %d invalid, want 1 and 0", v.Valid, v.Invalid)
			}
			if (v.HTTP01Requests > 0) != (typ == certs.ChallengeHTTP01) {
				t.Errorf("Pebble made %d HTTP-01 validation requests; the challenge must be %s", v.HTTP01Requests, typ)
			}
			t.Logf("%s: certificate (serial %x) %v after start; %d validation connections, all to instance-2 (no route); Pebble: %d order, %+v",
				typ, l.SerialNumber, took.Round(time.Millisecond), n, p.Orders(), v)
		})
	}
}
