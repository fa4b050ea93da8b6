package proxy

import (
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"time"
)

// ejectFor is how long an upstream whose dial failed is avoided while others
// remain: long enough to spare requests a retry, short enough for a task that
// is still starting to get traffic soon.
const ejectFor = 2 * time.Second

// upstream is the balancer state of one address. It is shared by every route
// using the address and kept across table swaps.
type upstream struct {
	addr      netip.AddrPort
	host      string       // addr as a URL host
	inflight  atomic.Int64 // requests sent and not yet finished
	downUntil atomic.Int64 // unix nanoseconds; 0 when healthy
}

func newUpstream(a netip.AddrPort) *upstream {
	return &upstream{addr: a, host: a.String()}
}

func (u *upstream) eject() { u.downUntil.Store(time.Now().Add(ejectFor).UnixNano()) }

// pick chooses the upstream with the fewest requests in flight, skipping the
// ones already tried (bit i of tried) and preferring ones not ejected. Ties
// are broken by a random starting point so load spreads evenly.
func (rs *routeState) pick(tried uint64) (*upstream, int) {
	n := len(rs.ups)
	if n == 1 {
		return rs.ups[0], 0
	}
	var now int64
	best, bestScore := -1, int64(0)
	start := rand.IntN(n)
	for i := range n {
		j := (start + i) % n
		if tried&(1<<(j%64)) != 0 {
			continue
		}
		u := rs.ups[j]
		score := u.inflight.Load()
		if d := u.downUntil.Load(); d != 0 {
			if now == 0 {
				now = time.Now().UnixNano()
			}
			if d > now {
				score += 1 << 40
			}
		}
		if best < 0 || score < bestScore {
			best, bestScore = j, score
		}
	}
	if best < 0 { // every upstream tried: take any
		best = start
	}
	return rs.ups[best], best
}
