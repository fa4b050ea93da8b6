package proxy

import (
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
)

// upstream is the balancer state of one address. It is shared by every route
// using the address and kept across table swaps.
type upstream struct {
	addr     netip.AddrPort
	host     string         // addr as a URL host
	inflight atomic.Int64   // requests sent and not yet finished
	health   upstreamHealth // outlier ejection (health.go)
	since    int64          // unix nanoseconds when it became routable; 0: in the first table (slowstart.go)
}

func newUpstream(a netip.AddrPort) *upstream {
	return &upstream{addr: a, host: a.String()}
}

// pick chooses the upstream with the fewest requests in flight, skipping the
// ones already tried (bit i of tried) and preferring ones in rotation
// (health.go: not ejected, not failing an active check). Ties
// are broken by a random starting point so load spreads evenly.
func (rs *routeState) pick(tried uint64) (*upstream, int) {
	n := len(rs.ups)
	if n == 1 {
		return rs.ups[0], 0
	}
	if rs.ramp != nil {
		if u, i, ok := rs.rampPick(tried); ok {
			return u, i
		}
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
		if rs.avoid(j, &now) {
			score += 1 << 40
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
