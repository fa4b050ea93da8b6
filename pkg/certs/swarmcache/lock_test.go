package swarmcache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Several instances (each its own Locker and holder id) contend for one
// lock: inside the critical section nobody else is, and Swarm's lock config
// names the one inside.
func TestLockMutualExclusion(t *testing.T) {
	e := newEnv(t)
	const holders, rounds = 3, 3
	var inside atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, holders*rounds)
	for h := range holders {
		l := e.locker(t, e.api, fmt.Sprintf("holder-%d", h), 30*time.Second)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			for range rounds {
				unlock, err := l.Lock(ctx, "example.com")
				if err != nil {
					errs <- err
					return
				}
				if n := inside.Add(1); n != 1 {
					errs <- fmt.Errorf("%s: %d holders inside at once", l.Holder(), n)
				}
				c, _, err := e.api.ConfigInspectWithRaw(ctx, l.lockName("example.com"))
				if err != nil {
					errs <- err
				} else if got := c.Spec.Labels[LabelHolder]; got != l.Holder() {
					errs <- fmt.Errorf("%s inside, but the lock config names %q", l.Holder(), got)
				}
				inside.Add(-1)
				unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(e.configs(t)); n != 0 {
		t.Errorf("%d configs left after every unlock", n)
	}
}

// Different names are different locks.
func TestLockNamesAreIndependent(t *testing.T) {
	e := newEnv(t)
	a, b := e.locker(t, e.api, "a", 30*time.Second), e.locker(t, e.api, "b", 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	unlockA, err := a.Lock(ctx, "one.example")
	if err != nil {
		t.Fatal(err)
	}
	defer unlockA()
	unlockB, err := b.Lock(ctx, "two.example")
	if err != nil {
		t.Fatalf("lock on another name blocked: %v", err)
	}
	unlockB()
}

// A holder that stays alive keeps its lock past the TTL by renewing it: a
// waiter gives up at its deadline instead of taking it over.
func TestLockRenewedWhileHeld(t *testing.T) {
	e := newEnv(t)
	const ttl = 900 * time.Millisecond
	holder, waiter := e.locker(t, e.api, "holder", ttl), e.locker(t, e.api, "waiter", ttl)
	unlock, err := holder.Lock(context.Background(), "example.com")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 4*ttl)
	defer cancel()
	if unlockW, err := waiter.Lock(ctx, "example.com"); err == nil {
		unlockW()
		t.Fatal("waiter took a lock whose holder is alive and renewing it")
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiter: %v, want the deadline", err)
	}
}

// A holder that dies (cut off from the API: no more renewals, no unlock)
// loses its lock once it expires; a waiter takes it over, and the dead
// holder's late unlock does not remove the new holder's lock.
func TestLockExpiredIsTakenOver(t *testing.T) {
	e := newEnv(t)
	const ttl = 1500 * time.Millisecond
	deadAPI := &cutAPI{API: e.api}
	dead, waiter := e.locker(t, deadAPI, "dead", ttl), e.locker(t, e.api, "waiter", ttl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	unlockDead, err := dead.Lock(ctx, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	deadAPI.cut.Store(true)
	before, _, err := e.api.ConfigInspectWithRaw(ctx, dead.lockName("example.com"))
	if err != nil {
		t.Fatal(err)
	}

	unlock, err := waiter.Lock(ctx, "example.com")
	if err != nil {
		t.Fatalf("waiter did not take over the expired lock: %v", err)
	}
	defer unlock()
	took := time.Now()
	after, _, err := e.api.ConfigInspectWithRaw(ctx, dead.lockName("example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if after.ID == before.ID || after.Spec.Labels[LabelHolder] != "waiter" {
		t.Fatalf("lock config after takeover: id %s holder %q; want a new config held by waiter", after.ID, after.Spec.Labels[LabelHolder])
	}
	// The dead holder's last expiry (it may have renewed before being cut)
	// must lie before the takeover.
	expired, err := time.Parse(time.RFC3339Nano, before.Spec.Labels[LabelExpires])
	if err != nil {
		t.Fatal(err)
	}
	if took.Before(expired) {
		t.Fatalf("taken over at %v, before the dead holder's expiry %v", took, expired)
	}

	deadAPI.cut.Store(false) // it comes back and runs its stale unlock
	unlockDead()
	still, _, err := e.api.ConfigInspectWithRaw(ctx, waiter.lockName("example.com"))
	if err != nil || still.ID != after.ID {
		t.Fatalf("a stale unlock removed the new holder's lock: %v", err)
	}
	unlock()
	if n := len(e.configs(t)); n != 0 {
		t.Fatalf("%d configs left after unlock", n)
	}
}
