package route

import (
	"cmp"
	"slices"
	"strings"
)

// Weights of the `weight` label (docs/labels.md, "Split, sticky and slow
// start").
const (
	DefaultWeight = 100  // of a split member that sets no weight
	MaxWeight     = 1000 // largest weight a route may set
)

// Split is a host and path that several routes (of several services) share:
// each request goes to one of them in proportion to its weight, the
// blue/green or canary split. It forms when routes of equal priority claim
// the same host and path and at least one of them sets the `weight` label;
// a member that sets none weighs DefaultWeight. Without a weight, the same
// claims are a conflict that one route wins. A blocked route never shares:
// it wins alone (fail closed).
type Split struct {
	Routes  []*Route // members, in precedence order: Routes[0] is what Match returns
	Weights []int    // Weights[i] is the weight of Routes[i], 0 to MaxWeight
}

// splitOf divides the claims of one host and path, sorted by precedence,
// into a split (nil when the first route takes the slot alone) and the
// routes that lose.
func splitOf(claims []*Route) (*Split, []*Route) {
	winner := claims[0]
	if winner.Blocked != "" || len(claims) == 1 {
		return nil, claims[1:]
	}
	n := 1
	for n < len(claims) && claims[n].Blocked == "" && claims[n].Priority == winner.Priority {
		n++
	}
	if n == 1 || !slices.ContainsFunc(claims[:n], func(r *Route) bool { return r.Weighted }) {
		return nil, claims[1:]
	}
	s := &Split{Routes: claims[:n:n], Weights: make([]int, n)}
	for i, r := range s.Routes {
		s.Weights[i] = r.EffectiveWeight()
	}
	return s, claims[n:]
}

// EffectiveWeight is the route's weight in a split: Weight when the label is
// set, else DefaultWeight.
func (r *Route) EffectiveWeight() int {
	if r.Weighted {
		return r.Weight
	}
	return DefaultWeight
}

// SplitView is one Split in the /api/routes view.
type SplitView struct {
	Host    string            `json:"host"`
	Path    string            `json:"path"`
	Members []SplitMemberView `json:"members"`
}

// SplitMemberView is one member of a SplitView.
type SplitMemberView struct {
	Service string `json:"service"`
	Route   string `json:"route"`
	Weight  int    `json:"weight"`
}

// splitViews lists the table's splits by host and path.
func (t *Table) splitViews() []SplitView {
	out := []SplitView{}
	for _, idx := range []struct {
		m      map[string][]slot
		prefix string
	}{{t.exact, ""}, {t.wildcard, "*."}} {
		for host, slots := range idx.m {
			for _, s := range slots {
				if s.split == nil {
					continue
				}
				v := SplitView{Host: idx.prefix + host, Path: s.path}
				for i, r := range s.split.Routes {
					v.Members = append(v.Members, SplitMemberView{Service: r.Service, Route: r.Name, Weight: s.split.Weights[i]})
				}
				out = append(out, v)
			}
		}
	}
	slices.SortFunc(out, func(a, b SplitView) int {
		return cmp.Or(strings.Compare(a.Host, b.Host), strings.Compare(a.Path, b.Path))
	})
	return out
}

// BalanceView is the weight, sticky and slow_start part of a RouteView.
type BalanceView struct {
	Weight    *int   `json:"weight,omitempty"`     // the `weight` label, when set
	Sticky    string `json:"sticky,omitempty"`     // the affinity cookie's name, when on
	SlowStart string `json:"slow_start,omitempty"` // e.g. "30s", when on
}

func (r *Route) balanceView() BalanceView {
	v := BalanceView{Sticky: r.Sticky}
	if r.Weighted {
		w := r.Weight
		v.Weight = &w
	}
	if r.SlowStart > 0 {
		v.SlowStart = r.SlowStart.String()
	}
	return v
}

// Splits lists the table's splits, one per shared host and path, in no
// particular order.
func (t *Table) Splits() []*Split {
	if t == nil {
		return nil
	}
	var out []*Split
	for _, idx := range []map[string][]slot{t.exact, t.wildcard} {
		for _, slots := range idx {
			for _, s := range slots {
				if s.split != nil {
					out = append(out, s.split)
				}
			}
		}
	}
	return out
}
