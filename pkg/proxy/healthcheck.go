package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// Active health checks (label health.path; docs/labels.md "Upstream
// health"). One checker per upstream address and check settings asks the
// upstream at each interval; the routes with those settings avoid the
// upstream while its last check failed or before its first answer. The
// checkers follow the table: SetTable starts the new ones and stops those
// no route uses any more; Close stops them all.

// The check states, as /api/routes shows them.
const (
	checkPending = "pending" // no answer yet
	checkPassing = "passing"
	checkFailing = "failing"
)

// maxCheckBody bounds what is read of a check's answer (the connection is
// not reused, so the rest is simply dropped).
const maxCheckBody = 4 << 10

const checkUserAgent = "swarm-ingress-health"

// checkKey identifies a checker: the same address checked with the same
// settings is checked once, whatever the number of routes.
type checkKey struct {
	addr   netip.AddrPort // the upstream
	check  route.HealthCheck
	scheme string // http or https
	host   string // Host header
}

// checker checks one upstream. state and lastErr are read by the balancer
// and the API while run writes them.
type checker struct {
	key     checkKey
	url     string
	state   atomic.Int32 // 0 pending, 1 passing, 2 failing
	lastErr atomic.Pointer[string]
	cancel  context.CancelFunc
}

func (c *checker) passing() bool { return c.state.Load() == 1 }
func (c *checker) failing() bool { return c.state.Load() == 2 }

// status returns the state and the last failure, for the API.
func (c *checker) status() (string, string) {
	switch c.state.Load() {
	case 1:
		return checkPassing, ""
	case 2:
		msg := ""
		if p := c.lastErr.Load(); p != nil {
			msg = *p
		}
		return checkFailing, msg
	}
	return checkPending, ""
}

// checks are the Handler's checkers. The map and closed are guarded by
// h.mu (sync runs under it, from build).
type checks struct {
	h      *Handler
	client *http.Client
	all    map[checkKey]*checker
	closed bool
	wg     sync.WaitGroup

	// tick waits, after each check of c, for c's next check; false: c stops.
	// Tests replace it to run the checks in lockstep.
	tick func(ctx context.Context, c *checker, d time.Duration) bool
}

func (cs *checks) init(h *Handler) {
	cs.h = h
	cs.all = map[checkKey]*checker{}
	cs.tick = func(ctx context.Context, _ *checker, d time.Duration) bool { return sleep(ctx, d) }
	cs.client = &http.Client{
		Transport: &http.Transport{
			Proxy:             nil,
			DialContext:       func(ctx context.Context, _, addr string) (net.Conn, error) { return dialTCP4(ctx, addr) },
			DisableKeepAlives: true, // each check also proves a new connection can be made
			TLSClientConfig: &tls.Config{
				InsecureSkipVerify: true, // as the proxy: IP upstreams on a private overlay (transport.go)
				MinVersion:         tls.VersionTLS12,
			},
			DisableCompression: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// sleep waits d or until ctx ends, and reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// sync gives each route of st with a check its checkers, starting those
// that do not run yet, and stops the checkers no route uses any more.
func (cs *checks) sync(st *state) {
	used := map[checkKey]bool{}
	for _, rs := range st.routes {
		rs.checks = nil
		c := rs.route.HealthCheck
		if cs.closed || c == nil || c.Path == "" || rs.route.Blocked != "" || len(rs.ups) == 0 {
			continue
		}
		rs.checks = make([]*checker, len(rs.ups))
		for j, u := range rs.ups {
			k := checkKey{addr: u.addr, check: *c, scheme: rs.scheme, host: checkHost(rs.route, u.addr)}
			used[k] = true
			ck := cs.all[k]
			if ck == nil {
				ck = cs.start(k)
			}
			rs.checks[j] = ck
		}
	}
	for k, ck := range cs.all {
		if !used[k] {
			ck.cancel()
			delete(cs.all, k)
		}
	}
}

// checkHost is the Host header of a route's checks: its first host that is
// not a wildcard, else the address.
func checkHost(r *route.Route, a netip.AddrPort) string {
	for _, h := range r.Hosts {
		if !strings.HasPrefix(h, "*.") {
			return h
		}
	}
	return a.String()
}

func (cs *checks) start(k checkKey) *checker {
	addr := k.addr
	if k.check.Port != 0 {
		addr = netip.AddrPortFrom(addr.Addr(), k.check.Port)
	}
	ck := &checker{key: k, url: k.scheme + "://" + addr.String() + k.check.Path}
	ctx, cancel := context.WithCancel(context.Background())
	ck.cancel = cancel
	cs.all[k] = ck
	cs.wg.Add(1)
	go func() {
		defer cs.wg.Done()
		cs.run(ctx, ck)
	}()
	return ck
}

// run checks at once, then at every interval, until ctx ends.
func (cs *checks) run(ctx context.Context, ck *checker) {
	c := ck.key.check.WithDefaults()
	for {
		cs.check(ctx, ck, c)
		if ctx.Err() != nil || !cs.tick(ctx, ck, c.Interval) {
			return
		}
	}
}

// check runs one check and records its result.
func (cs *checks) check(ctx context.Context, ck *checker, c route.HealthCheck) {
	err := cs.ask(ctx, ck, c)
	if ctx.Err() != nil {
		return // stopped: the result means nothing
	}
	before := ck.state.Load()
	if err == nil {
		ck.state.Store(1)
	} else {
		msg := err.Error()
		ck.lastErr.Store(&msg)
		ck.state.Store(2)
	}
	log := cs.h.health.log
	switch {
	case err != nil && before != 2:
		log.Warn().Str(fieldUpstream, ck.key.addr.String()).Str("check", ck.url).Err(err).Msg("upstream fails its health check")
	case err == nil && before == 2:
		log.Info().Str(fieldUpstream, ck.key.addr.String()).Str("check", ck.url).Msg("upstream passes its health check again")
	}
}

var errCheckStatus = errors.New("unexpected status")

func (cs *checks) ask(ctx context.Context, ck *checker, c route.HealthCheck) error {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ck.url, nil)
	if err != nil {
		return err
	}
	req.Host = ck.key.host
	req.Header.Set("User-Agent", checkUserAgent)
	res, err := cs.client.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("no answer within %s", c.Timeout)
		}
		if inner := errors.Unwrap(err); inner != nil {
			return inner // the url.Error repeats the URL the log already has
		}
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxCheckBody))
	res.Body.Close()
	if !c.Passes(res.StatusCode) {
		return fmt.Errorf("%w %s (want %s)", errCheckStatus, strconv.Itoa(res.StatusCode), c.Status())
	}
	return nil
}

// stop stops every checker; no check starts afterwards (a table set after
// Handler.Close has none). It runs under h.mu.
func (cs *checks) stop() {
	cs.closed = true
	for k, ck := range cs.all {
		ck.cancel()
		delete(cs.all, k)
	}
}

// wait returns once every stopped checker has ended.
func (cs *checks) wait() { cs.wg.Wait() }
