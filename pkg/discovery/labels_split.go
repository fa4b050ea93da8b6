package discovery

import (
	"fmt"
	"strconv"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// The value parsers of the split, sticky and slow start keys
// (docs/labels.md, "Split, sticky and slow start").

// applySplitLabel parses the split, sticky and slow start keys into r; ok
// reports whether key is one of them.
func applySplitLabel(r *route.Route, key, v string) (ok bool, err error) {
	switch key {
	case "weight":
		r.Weight, err = parseWeight(v)
		r.Weighted = err == nil
	case "sticky":
		r.Sticky, err = parseSticky(v)
	case "slow_start":
		r.SlowStart, err = parseSlowStart(v)
	default:
		return false, nil
	}
	return true, err
}

// DefaultStickyCookie is the cookie of `sticky=true`.
const DefaultStickyCookie = "ingress_sticky"

// maxSlowStart bounds `slow_start`: a ramp longer than this is a typo.
const maxSlowStart = time.Hour

// parseWeight parses `weight`: a whole number from 0 to route.MaxWeight.
func parseWeight(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > route.MaxWeight {
		return 0, fmt.Errorf("%q is not a whole number from 0 to %d (e.g. 90 and 10 for a 90/10 split)", v, route.MaxWeight)
	}
	return n, nil
}

// parseSticky parses `sticky`: true (the default cookie), false (off), or
// the name of the cookie.
func parseSticky(v string) (string, error) {
	switch v {
	case "true":
		return DefaultStickyCookie, nil
	case "false":
		return "", nil
	}
	if v == "" || len(v) > 64 {
		return "", fmt.Errorf("%q is not true, false or a cookie name of 1 to 64 characters", v)
	}
	for i := 0; i < len(v); i++ {
		if !httpguts.IsTokenRune(rune(v[i])) {
			return "", fmt.Errorf("%q is not true, false or a cookie name (letters, digits and !#$%%&'*+-.^_`|~)", v)
		}
	}
	return v, nil
}

// parseSlowStart parses `slow_start`: a Go duration up to maxSlowStart, 0
// for off.
func parseSlowStart(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > maxSlowStart {
		return 0, fmt.Errorf("%q is not a Go duration from 0 (off) to %s (e.g. 30s)", v, maxSlowStart)
	}
	return d, nil
}

// balancedKeys need several upstreams to act on: a route in vip mode has
// one, the service's virtual IP, and Swarm balances behind it.
var balancedKeys = []string{"sticky", "slow_start"}

// checkBalanced returns the label of a balanced key set on a route in vip
// mode, and the problem to report, or "" when there is none.
func checkBalanced(prefix string, s *Spec, svcName string) (label, problem string) {
	for _, key := range balancedKeys {
		if _, ok := s.Labels[key]; !ok {
			continue
		}
		if key == "sticky" && s.Route.Sticky == "" || key == "slow_start" && s.Route.SlowStart == 0 {
			continue // set to off
		}
		return s.Label(prefix, key), fmt.Sprintf("%s needs the service's tasks as upstreams, but service %s is reached on its virtual IP, behind which Swarm balances: set upstream to tasks, or remove this label", key, svcName)
	}
	return "", ""
}
