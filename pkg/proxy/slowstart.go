package proxy

import "time"

// Slow start (label `slow_start`, docs/labels.md "Split, sticky and slow
// start"): an upstream that becomes routable after the first complete table
// gets at first rampFloor of its share, growing linearly to all of it over
// the route's SlowStart. While an upstream of the route ramps, the route's
// upstreams are chosen by smooth weighted round robin (weighted.go) with
// the ramped weights instead of by fewest requests in flight.

// Weights of the ramp, in thousandths of an upstream's full share.
const (
	rampFull  = 1000
	rampFloor = 100 // 10% at the start
)

// ramp is a route's slow start state, prepared once per table.
type ramp struct {
	d   time.Duration
	end int64 // unix nanoseconds when the last upstream's ramp ends
	wrr swrr
}

// now is the handler's clock (Config.Now, for tests), in unix nanoseconds.
func (h *Handler) now() int64 {
	if h.cfg.Now != nil {
		return h.cfg.Now().UnixNano()
	}
	return time.Now().UnixNano()
}

// routableSince is the start of the ramp of an upstream that is new in the
// table being built: now, or 0 (no ramp) while the first complete table is
// built, so that a restart does not ramp every upstream.
func (h *Handler) routableSince() int64 {
	if t := h.state.Load(); t == nil || t.table == nil || t.table.Partial {
		return 0
	}
	return h.now()
}

// newRamp returns the slow start state of rs, nil when the route has none
// or none of its upstreams can still be ramping.
func (h *Handler) newRamp(rs *routeState) *ramp {
	d := rs.route.SlowStart
	if d <= 0 || len(rs.ups) < 2 {
		return nil
	}
	r := &ramp{d: d}
	for _, u := range rs.ups {
		if u.since != 0 {
			r.end = max(r.end, u.since+int64(d))
		}
	}
	if r.end == 0 || r.end <= h.now() {
		return nil
	}
	r.wrr.current = make([]int64, len(rs.ups))
	return r
}

// weight is u's ramped weight at now, in thousandths.
func (r *ramp) weight(u *upstream, now int64) int64 {
	if u.since == 0 || now >= u.since+int64(r.d) {
		return rampFull
	}
	el := max(now-u.since, 0)
	return rampFloor + (rampFull-rampFloor)*el/int64(r.d)
}

// rampPick chooses an upstream by ramped weight, skipping the ones tried and
// the ones ejected. ok is false when no upstream ramps any more, or none is
// left: pick decides then.
func (rs *routeState) rampPick(tried uint64) (u *upstream, idx int, ok bool) {
	r := rs.ramp
	now := rs.h.now()
	if now >= r.end {
		return nil, 0, false
	}
	var hnow int64 // health.go's clock
	i := r.wrr.next(func(i int) int64 {
		if tried&(1<<(i%64)) != 0 || rs.avoid(i, &hnow) {
			return 0
		}
		return r.weight(rs.ups[i], now)
	})
	if i < 0 {
		return nil, 0, false
	}
	return rs.ups[i], i, true
}
