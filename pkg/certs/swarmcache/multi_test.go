package swarmcache

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarm-ingress/swarm-ingress/internal/pebbletest"
)

// Three instances share one Swarm cache and lock. A new tls=auto host yields
// exactly one ACME order; Pebble's validation is answered by an instance
// that does not hold the lock (so not the one that placed the order: the
// token went through Swarm); all three serve the same certificate; the
// configs hold no plaintext; and once the route is gone, Prune leaves
// nothing of the host behind.
func TestMultiInstanceOneOrder(t *testing.T) {
	e := newEnv(t)
	keyFile := newKeyFile(t)
	const host = "multi.swarm-ingress.test"
	httpSwitch, tlsSwitch := newSwitch(t), newSwitch(t)
	p := pebbletest.New(t, pebbletest.Config{HTTPPort: httpSwitch.port(), TLSPort: tlsSwitch.port()})

	var (
		mu        sync.Mutex
		instances []*instance
		answered  []string // "holder -> answerer" per validation connection
	)
	route := func(addrOf func(*instance) string) func() string {
		return func() string {
			mu.Lock()
			defer mu.Unlock()
			holder, _, err := e.holder(instances[0].locker, host)
			for i, in := range instances {
				if err == nil && in.name == holder {
					next := instances[(i+1)%len(instances)]
					answered = append(answered, holder+" -> "+next.name)
					return addrOf(next)
				}
			}
			answered = append(answered, fmt.Sprintf("no holder (%q, %v) -> dropped", holder, err))
			return ""
		}
	}
	httpSwitch.pick = route(func(in *instance) string { return in.httpAddr })
	tlsSwitch.pick = route(func(in *instance) string { return in.tlsAddr })

	mu.Lock()
	for i := range 3 {
		instances = append(instances, e.startInstance(t, fmt.Sprintf("instance-%d", i), keyFile, p, 30*time.Second, host))
	}
	mu.Unlock()
	httpSwitch.start()
	tlsSwitch.start()

	roots := p.IssuerRoots(t)
	var first []byte
	for _, in := range instances {
		got := leaf(t, in.tlsAddr, host, roots).Raw
		if first == nil {
			first = got
		} else if !bytes.Equal(got, first) {
			t.Errorf("%s serves another certificate than %s", in.name, instances[0].name)
		}
	}
	if n := p.Orders(); n != 1 {
		t.Errorf("Pebble saw %d orders for one host and three instances, want exactly 1", n)
	}
	mu.Lock()
	t.Logf("validation connections: %q", answered)
	if len(answered) == 0 {
		t.Error("no validation connection reached the instances")
	}
	for _, a := range answered {
		if strings.Contains(a, "dropped") {
			t.Errorf("validation while nobody held the lock: %s", a)
		}
	}
	mu.Unlock()

	for _, c := range e.configs(t) {
		for _, bad := range []string{"BEGIN", "PRIVATE KEY", host} {
			if bytes.Contains(c.Spec.Data, []byte(bad)) {
				t.Errorf("config %s holds plaintext %q", c.Spec.Name, bad)
			}
		}
	}
	if n := len(e.entries(t, host)); n != 1 {
		t.Fatalf("%d configs hold the certificate of %s, want 1", n, host)
	}

	// The route goes away; the cleanup after it keeps only what a current
	// route (none) or the ACME account needs.
	for _, in := range instances {
		in.mgr.SetTable(tlsTable())
	}
	keep := KeepHosts(tlsTable().TLSHost)
	if _, err := instances[1].store.Prune(context.Background(), keep); err != nil {
		t.Fatalf("Prune: %v", err)
	}
	var left []string
	for _, c := range e.configs(t) {
		if c.Spec.Labels[LabelCheck] == "" && c.Spec.Labels[LabelKeyHash] != keyHash("acme_account+key") {
			left = append(left, c.Spec.Name)
		}
	}
	if len(left) > 0 {
		t.Errorf("orphan configs after the route left and Prune ran: %v", left)
	}
	if _, err := instances[2].store.Get(context.Background(), "acme_account+key"); err != nil {
		t.Errorf("the ACME account did not survive Prune: %v", err)
	}
}

// lockTaken records a lock takeover seen from the outside.
type lockTaken struct {
	holder  string
	created time.Time
}

// The instance holding the lock is killed (SIGKILL, a separate process) while
// Pebble validates its order. Another instance completes the order once the
// dead holder's lock has expired.
func TestMultiHolderKilledMidOrder(t *testing.T) {
	e := newEnv(t)
	keyFile := newKeyFile(t)
	const host = "killed.swarm-ingress.test"
	const ttl = 3 * time.Second
	httpSwitch, tlsSwitch := newSwitch(t), newSwitch(t)
	p := pebbletest.New(t, pebbletest.Config{HTTPPort: httpSwitch.port(), TLSPort: tlsSwitch.port()})

	probe := e.locker(t, e.api, "probe", ttl) // only for lockName
	helper := startHelper(t, e, keyFile, p, host, ttl)

	var (
		mu        sync.Mutex
		survivor  *instance
		killedAt  = make(chan lockTaken, 1)
		takenOver []lockTaken
	)
	route := func(addrOf func(*instance) string) func() string {
		return func() string {
			holder, created, err := e.holder(probe, host)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil || holder == "":
				t.Errorf("validation connection while no lock is held (%v)", err)
				return ""
			case holder == helperHolder:
				helper.kill() // mid-order: Pebble is validating its challenge
				select {
				case killedAt <- lockTaken{holder: holder, created: created}:
				default:
				}
				return ""
			case survivor != nil && holder == survivor.name:
				takenOver = append(takenOver, lockTaken{holder: holder, created: created})
				return addrOf(survivor)
			}
			t.Errorf("validation connection while %q holds the lock", holder)
			return ""
		}
	}
	httpSwitch.pick = route(func(in *instance) string { return in.httpAddr })
	tlsSwitch.pick = route(func(in *instance) string { return in.tlsAddr })
	httpSwitch.start()
	tlsSwitch.start()

	var dead lockTaken
	select {
	case dead = <-killedAt:
	case <-time.After(60 * time.Second):
		t.Fatalf("the helper instance never reached validation; its output:\n%s", helper.output())
	}
	expires := helper.lastExpiry(t)
	if n := p.Orders(); n != 1 {
		t.Fatalf("%d orders when the holder was killed, want its 1", n)
	}

	mu.Lock()
	survivor = e.startInstance(t, "survivor", keyFile, p, ttl, host)
	mu.Unlock()
	got := leaf(t, survivor.tlsAddr, host, p.IssuerRoots(t))
	if err := got.VerifyHostname(host); err != nil {
		t.Fatal(err)
	}
	if n := p.Orders(); n != 2 {
		t.Errorf("%d orders, want 2 (the dead holder's and the survivor's)", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(takenOver) == 0 {
		t.Fatal("the survivor's order was never validated under its lock")
	}
	if !takenOver[0].created.After(expires) {
		t.Errorf("survivor's lock created %v, before the dead holder's lock (created %v) expired at %v",
			takenOver[0].created, dead.created, expires)
	}
}
