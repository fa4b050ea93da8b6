package proxy

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
	"unsafe"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// Per-client-address limits (labels limit.rate, limit.burst, limit.conn;
// docs/labels.md, "Limits").
//
// limit.rate follows Nginx limit_req: a request is accepted while the
// address's excess (requests over the rate, draining at the rate) stays
// within limit.burst. It is computed here as GCRA: each address keeps a
// theoretical arrival time tat; a request at now is accepted when
// max(tat, now) - now <= burst × interval, and then moves tat on by one
// interval. For 10r/s with burst 5, twenty requests at t=0 see six accepted
// (1 + 5), then one more every 100 ms: Nginx's count. Unlike Nginx without
// `nodelay`, which holds the burst requests back and releases them one per
// interval, the accepted ones go through at once (Nginx's `nodelay`), and
// every request beyond rate+burst is answered 429 at once, with Retry-After
// the seconds until one would pass.
//
// limit.conn is Nginx limit_conn: the number of requests of one address in
// progress at once (a stream counts until it ends); beyond it, 429.
//
// Memory is bounded whatever the number of addresses: a route's table is
// limitShards shards of limitSets sets of limitWays entries (a set-
// associative cache, like a CPU's), allocated a shard at a time on first
// use, never grown: limitTableBytes (2 MiB) per route with limits. An
// address new to a full set takes the place of the entry with the oldest
// tat that holds no request in progress: the most recovered one, which an
// entry whose tat has passed is exactly (forgetting it changes nothing).
// When every entry of the set holds a request in progress (an attack from
// many addresses colliding in one set), the new address gets 429, as Nginx
// answers limit_conn's error when its zone is full.

const (
	limitShards = 64  // each with its own lock
	limitSets   = 128 // sets per shard
	limitWays   = 8   // entries per set

	// limitEntries is how many addresses one route tracks at once.
	limitEntries = limitShards * limitSets * limitWays
	// limitTableBytes is the most a route's tables take (the shard
	// headers aside: limitShards × unsafe.Sizeof(limitShard{})).
	limitTableBytes = limitEntries * int(unsafe.Sizeof(limitEntry{}))
)

// limitEntry is one client address (limitKey) of one route.
type limitEntry struct {
	key   [16]byte
	tat   int64 // theoretical arrival time, in ns since the limiter's epoch
	conns int32 // requests in progress (only counted with limit.conn)
	live  bool
	shard uint8 // the entry's shard, for release
}

type limitShard struct {
	mu   sync.Mutex
	sets *[limitSets][limitWays]limitEntry // nil until first used
	_    [40]byte                          // keep two shards' locks off one cache line
}

// limiter holds one route's limits and the state of its client addresses.
// It survives table swaps as long as the route keeps the same limits.
type limiter struct {
	cfg      route.Limit
	interval int64 // ns per request at the rate; 0 without limit.rate
	tau      int64 // burst × interval: how far tat may run ahead of now
	epoch    time.Time
	seed     maphash.Seed
	shards   [limitShards]limitShard
}

func newLimiter(cfg route.Limit, now time.Time) *limiter {
	iv := int64(cfg.Rate.Interval())
	return &limiter{cfg: cfg, interval: iv, tau: int64(cfg.Burst) * iv, epoch: now, seed: maphash.MakeSeed()}
}

// limitKey is the key of a client address: an IPv4 address, or the /64 of
// an IPv6 address (one host is given a whole /64, so counting its addresses
// apart would let it multiply its allowance by 2^64).
func limitKey(a netip.Addr) [16]byte {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		a = p.Addr()
	}
	return a.As16() // the zero Addr (no address known) gives one shared key
}

// admit counts one request of the address key arriving at now. On
// success the request holds a limit.conn slot until release(e) is called
// (e is nil without limit.conn). On refusal retry is how long until a
// request of this address would pass the rate (0: unknown, e.g. for
// limit.conn).
func (l *limiter) admit(key [16]byte, now time.Time) (e *limitEntry, ok bool, retry time.Duration) {
	h := maphash.Bytes(l.seed, key[:])
	shard := h % limitShards
	sh := &l.shards[shard]
	t := int64(now.Sub(l.epoch))

	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.sets == nil {
		sh.sets = new([limitSets][limitWays]limitEntry)
	}
	set := &sh.sets[(h/limitShards)%limitSets]
	e = l.find(set, key, t)
	if e == nil {
		return nil, false, 0 // every entry of the set holds a request in progress
	}
	if l.cfg.Conn > 0 && int(e.conns) >= l.cfg.Conn {
		return nil, false, 0
	}
	if l.interval > 0 {
		tat := max(e.tat, t)
		if ahead := tat - t; ahead > l.tau {
			return nil, false, time.Duration(ahead - l.tau)
		}
		e.tat = tat + l.interval
	}
	if l.cfg.Conn == 0 {
		return nil, true, 0
	}
	e.conns++
	e.shard = uint8(shard)
	return e, true, 0
}

// find returns the entry of key in set, making one if needed (see the
// eviction rule above), or nil when the set has no room.
func (l *limiter) find(set *[limitWays]limitEntry, key [16]byte, t int64) *limitEntry {
	var victim *limitEntry
	for i := range set {
		e := &set[i]
		switch {
		case e.live && e.key == key:
			return e
		case !e.live:
			if victim == nil || victim.live {
				victim = e
			}
		case e.conns == 0 && (victim == nil || victim.live && e.tat < victim.tat):
			victim = e
		}
	}
	if victim != nil {
		*victim = limitEntry{key: key, tat: t, live: true}
	}
	return victim
}

// release gives back the limit.conn slot of a request admit accepted.
func (l *limiter) release(e *limitEntry) {
	if e == nil {
		return
	}
	sh := &l.shards[e.shard] // stable while conns > 0: the entry is not replaced
	sh.mu.Lock()
	e.conns--
	sh.mu.Unlock()
}

// size reports the bytes the limiter's tables hold and the addresses it
// tracks: its own accounting, for the memory bound's test and metrics.
func (l *limiter) size() (bytes, entries int) {
	bytes = int(unsafe.Sizeof(*l))
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		if sh.sets != nil {
			bytes += int(unsafe.Sizeof(*sh.sets))
			for s := range sh.sets {
				for w := range sh.sets[s] {
					if sh.sets[s][w].live {
						entries++
					}
				}
			}
		}
		sh.mu.Unlock()
	}
	return bytes, entries
}
