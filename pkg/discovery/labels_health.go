package discovery

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// The upstream health keys (docs/labels.md "Upstream health"): outlier
// ejection (eject.*) and the active check (health.*).

const (
	maxEjectAfter     = 1000
	maxEjectFor       = time.Hour
	minHealthInterval = time.Second
	maxHealthInterval = time.Hour
	maxHealthPath     = 1024
)

// applyHealthLabel parses one eject.* or health.* key into r. It reports
// false for any other key.
func applyHealthLabel(r *route.Route, key, v string) (bool, error) {
	var err error
	switch key {
	case "eject.after":
		r.EjectAfter, err = parseEjectAfter(v)
	case "eject.for":
		r.EjectFor, err = parseBoundedDuration(v, 0, maxEjectFor)
	case "health.path", "health.interval", "health.timeout", "health.status", "health.port":
		if r.HealthCheck == nil {
			r.HealthCheck = &route.HealthCheck{}
		}
		c := r.HealthCheck
		switch key {
		case "health.path":
			c.Path, err = parseHealthPath(v)
		case "health.interval":
			c.Interval, err = parseBoundedDuration(v, minHealthInterval, maxHealthInterval)
		case "health.timeout":
			c.Timeout, err = parseBoundedDuration(v, 0, maxHealthInterval)
		case "health.status":
			c.StatusMin, c.StatusMax, err = parseStatusRange(v)
		case "health.port":
			c.Port, err = parsePort(v)
		}
	default:
		return false, nil
	}
	return true, err
}

// normalizeHealth drops the active check of a route without health.path:
// the other health.* keys are only defaults for the routes that set a path
// (docs/labels.md "Upstream health").
func normalizeHealth(r *route.Route) {
	if r.HealthCheck != nil && r.HealthCheck.Path == "" {
		r.HealthCheck = nil
	}
}

// parseEjectAfter: a count from 0 to 1000; 0 (only connect errors eject)
// is stored as -1, since a zero Route field means the default.
func parseEjectAfter(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > maxEjectAfter {
		return 0, fmt.Errorf("%q is not a whole number from 0 (only connect errors eject) to %d", v, maxEjectAfter)
	}
	if n == 0 {
		return -1, nil
	}
	return n, nil
}

func parseBoundedDuration(v string, lo, hi time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d < lo || d > hi {
		if lo > 0 {
			return 0, fmt.Errorf("%q is not a Go duration from %s to %s (e.g. 5s, 1m)", v, lo, hi)
		}
		return 0, fmt.Errorf("%q is not a positive Go duration up to %s (e.g. 500ms, 5s, 1m)", v, hi)
	}
	return d, nil
}

// parseHealthPath: an absolute request path with an optional query, in
// visible ASCII, without a fragment.
func parseHealthPath(v string) (string, error) {
	if !strings.HasPrefix(v, "/") || len(v) > maxHealthPath {
		return "", fmt.Errorf("health path %q must start with / (e.g. /healthz) and be at most %d characters", v, maxHealthPath)
	}
	for i := range len(v) {
		if c := v[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return "", fmt.Errorf("health path %q: character %q is not allowed (visible ASCII without #; escape others as %%XX)", v, c)
		}
	}
	return v, nil
}

// parseStatusRange parses "200" or "200-399" (codes 100-599).
func parseStatusRange(v string) (int, int, error) {
	bad := fmt.Errorf("%q is not a status code or range from 100 to 599 (e.g. 200 or 200-399)", v)
	lo, hi, isRange := strings.Cut(v, "-")
	if !isRange {
		hi = lo
	}
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	b, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil || a < 100 || b > 599 || a > b {
		return 0, 0, bad
	}
	return a, b, nil
}
