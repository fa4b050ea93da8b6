package proxy

import (
	"net/http"
	"sync"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// A split (route.Split, docs/labels.md "Split, sticky and slow start") is a
// host and path that routes of several services share by weight. match.go
// asks pickMember which member serves the request; the member's own state
// (routeState) does the rest, its checks included.

// splitState is a split's balancer, prepared once per table.
type splitState struct {
	members []*routeState
	weights []int64 // of the members, from the labels
	wrr     swrr
}

// prepareSplits builds the balancers of t's splits from the routes' states.
func (st *state) prepareSplits() {
	for _, s := range st.table.Splits() {
		ss := &splitState{}
		ss.wrr.current = make([]int64, len(s.Routes))
		for i, r := range s.Routes {
			ss.members = append(ss.members, st.routes[r])
			ss.weights = append(ss.weights, int64(s.Weights[i]))
		}
		if st.splits == nil {
			st.splits = map[*route.Split]*splitState{}
		}
		st.splits[s] = ss
	}
}

// pickMember returns the member of the split that serves r: the one a
// valid sticky cookie names (its upstream noted in ex), else the next by
// smooth weighted round robin among the members with a weight and an
// upstream. A member of weight 0 gets nothing, its sticky clients included
// (they move at once: weight 0 is how a split is cut over). It returns nil
// when no member can take the request.
func (st *state) pickMember(s *route.Split, r *http.Request, ex *exchange) *routeState {
	ss := st.splits[s]
	for i, m := range ss.members {
		if m.sticky != nil && ss.weights[i] > 0 {
			if i := m.sticky.find(r.Header, m); i >= 0 {
				ex.sticky = stickyHit{rs: m, idx: i}
				return m
			}
		}
	}
	i := ss.wrr.next(func(i int) int64 {
		if len(ss.members[i].ups) == 0 {
			return 0
		}
		return ss.weights[i]
	})
	if i < 0 {
		return nil
	}
	return ss.members[i]
}

// swrr is Nginx's smooth weighted round robin: each pick adds every
// eligible item's weight to its current value, takes the largest and
// subtracts the total from it. It is deterministic and spreads the picks
// evenly (5:1:1 gives a a b a c a a, not a a a a a b c).
type swrr struct {
	mu      sync.Mutex
	current []int64 // one per item, sized by the owner
}

// next picks among the items whose weight (as weight reports it now) is
// positive and returns its index, or -1 when there is none.
func (w *swrr) next(weight func(i int) int64) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	best, total := -1, int64(0)
	for i := range w.current {
		wt := weight(i)
		if wt <= 0 {
			continue
		}
		w.current[i] += wt
		total += wt
		if best < 0 || w.current[i] > w.current[best] {
			best = i
		}
	}
	if best >= 0 {
		w.current[best] -= total
	}
	return best
}
