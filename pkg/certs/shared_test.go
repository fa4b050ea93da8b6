package certs

import (
	"testing"
)

// TestSharedCacheAnswersWithoutRoute: two instances share a cache; the one
// whose table names the host orders, and Pebble's validation reaches the
// other, whose table does not (yet) name it. The pending challenge is
// answered from the cache whatever that table says: one order, issued.
func TestSharedCacheAnswersWithoutRoute(t *testing.T) {
	t.Parallel()
	// With ChallengeType pinned, the one order is validated with that type.
	// Without it, autocert tries tls-alpn-01 first, each challenge type on a
	// new order: when Pebble can reach only port 80, the first order fails
	// and the second is validated over http-01.
	tests := []struct {
		name      string
		challenge string
		rig       rigConfig
		orders    int
	}{
		{name: "http-01", challenge: ChallengeHTTP01, rig: rigConfig{http01: true}, orders: 1},
		{name: "tls-alpn-01", challenge: ChallengeTLSALPN01, rig: rigConfig{tlsALPN01: true}, orders: 1},
		{name: "both types, port 80 only", rig: rigConfig{http01: true}, orders: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const host = "shared.example.test"
			r := newRig(t, tc.rig)
			cfg := r.config()
			cfg.ChallengeType = tc.challenge
			ordering, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ordering.HTTPHandler(nil)  // offers http-01, as when it serves port 80
			answering, err := New(cfg) // same DataDir: the same cache
			if err != nil {
				t.Fatal(err)
			}
			answering.SetTable(r.table("other.example.test"))
			r.serve(answering) // only this one listens where Pebble validates

			ordering.SetTable(r.table(host))
			r.run(ordering)
			waitStatus(t, ordering, "certificate issued through the other instance", issued(host))
			if n := r.pebble.Orders(); n != tc.orders {
				t.Errorf("Pebble saw %d orders, want %d", n, tc.orders)
			}
			if tc.challenge != "" {
				checkValidations(t, r.pebble.Validations(), tc.challenge)
			}
			// The instance without the route still orders nothing for the name.
			if _, err := r.handshake(host); err == nil {
				t.Error("the instance without the route served a certificate for it")
			}
			if n := r.pebble.Orders(); n != tc.orders {
				t.Errorf("a handshake on the instance without the route placed %d more orders", n-tc.orders)
			}
		})
	}
}
