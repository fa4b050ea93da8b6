package proxy

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
)

// Sticky sessions (label `sticky`, docs/labels.md "Split, sticky and slow
// start"): the first response sets a cookie whose value is an HMAC over the
// route and the upstream that answered; a request that brings it back goes
// to that upstream while it is in the route and not ejected. Otherwise it
// is balanced as if it had no cookie, and the response sets a new one. The
// value names the upstream without revealing it and cannot be forged; the
// key is Config.StickyKey (the same on every edge) or random per process.

// stickyKeySize is the size of a random key.
const stickyKeySize = 32

// sticky is a sticky route's cookie values, prepared once per table.
type sticky struct {
	cookie string         // cookie name
	path   string         // cookie Path: the route's path
	values []string       // values[i] names the route's upstream i
	index  map[string]int // value -> upstream index
}

// stickyHit is the upstream a request's cookie named, found by pickMember
// for a split or by roundTrip's first pick.
type stickyHit struct {
	rs  *routeState
	idx int
}

// newSticky returns the sticky state of rs, nil when the route is not
// sticky.
func (h *Handler) newSticky(rs *routeState) *sticky {
	if rs.route.Sticky == "" {
		return nil
	}
	s := &sticky{cookie: rs.route.Sticky, path: rs.route.Path, index: make(map[string]int, len(rs.ups))}
	for i, u := range rs.ups {
		m := hmac.New(sha256.New, h.stickyKey)
		m.Write([]byte(rs.id))
		m.Write([]byte{0})
		m.Write([]byte(u.host))
		v := base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
		s.values = append(s.values, v)
		s.index[v] = i
	}
	return s
}

// stickyKeyOf returns the configured key, or a random one.
func stickyKeyOf(cfg Config) []byte {
	if len(cfg.StickyKey) > 0 {
		return cfg.StickyKey
	}
	k := make([]byte, stickyKeySize)
	_, _ = rand.Read(k) // never fails (crypto/rand)
	return k
}

// find returns the index of the upstream of rs that a cookie in hdr names,
// if it is available, else -1.
func (s *sticky) find(hdr http.Header, rs *routeState) int {
	for _, c := range readCookies(hdr, s.cookie) {
		var now int64
		if i, ok := s.index[c]; ok && !rs.avoid(i, &now) { // health.go: ejected or failing its check
			return i
		}
	}
	return -1
}

// readCookies returns the values of the cookies named name in hdr.
func readCookies(hdr http.Header, name string) []string {
	if len(hdr["Cookie"]) == 0 {
		return nil
	}
	r := http.Request{Header: hdr}
	var vs []string
	for _, c := range r.CookiesNamed(name) {
		vs = append(vs, c.Value)
	}
	return vs
}

// stickyPick is roundTrip's first choice on a sticky route: the upstream
// the request's cookie names, when it is available. It returns -1 for none.
func (rs *routeState) stickyPick(req *http.Request, ex *exchange) int {
	if ex != nil && ex.sticky.rs == rs {
		return ex.sticky.idx // found by pickMember
	}
	i := rs.sticky.find(req.Header, rs)
	if i >= 0 && ex != nil {
		ex.sticky = stickyHit{rs: rs, idx: i}
	}
	return i
}

// stick sets the cookie on res unless the request already named upstream
// idx, which answered.
func (rs *routeState) stick(req *http.Request, ex *exchange, res *http.Response, idx int) {
	if ex != nil && ex.sticky.rs == rs && ex.sticky.idx == idx {
		return
	}
	c := http.Cookie{Name: rs.sticky.cookie, Value: rs.sticky.values[idx], Path: rs.sticky.path,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: req.TLS != nil}
	res.Header.Add("Set-Cookie", c.String())
}

// choose is the balancer's entry for one attempt: on a sticky route the
// first attempt goes to the upstream the cookie names, unless it is out of
// the rotation (health.go: ejected or failing its check); everything else
// to pick (balance.go).
func (rs *routeState) choose(req *http.Request, ex *exchange, tried uint64) (*upstream, int) {
	if rs.sticky != nil && tried == 0 {
		var now int64
		if i := rs.stickyPick(req, ex); i >= 0 && (len(rs.ups) == 1 || !rs.avoid(i, &now)) {
			return rs.ups[i], i
		}
	}
	return rs.pick(tried)
}
