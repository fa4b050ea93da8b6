package proxy

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// FuzzClientIP: whatever X-Forwarded-For a trusted peer sends, the client
// address is the peer or one of the listed addresses, never a trusted proxy
// unless every hop is one, and never anything that was not sent.
func FuzzClientIP(f *testing.F) {
	f.Add("203.0.113.9", "10.1.2.3")
	f.Add("203.0.113.9, 198.51.100.1", "")
	f.Add(" , ,", "::ffff:10.0.0.1")
	f.Add("nonsense", "127.0.0.1")
	f.Fuzz(func(t *testing.T, xff1, xff2 string) {
		h := New(Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}})
		r, _ := http.NewRequest("GET", "http://app.test/", nil)
		r.RemoteAddr = "127.0.0.1:5555"
		r.Header.Add("X-Forwarded-For", xff1)
		if xff2 != "" {
			r.Header.Add("X-Forwarded-For", xff2)
		}
		ex := &exchange{}
		ex.peer, ex.trusted = h.peer(r)
		got := h.clientIP(r, ex)
		if !got.IsValid() {
			return // an unparsable hop: denied by every allow list
		}
		sent := map[netip.Addr]bool{ex.peer: true}
		for _, v := range []string{xff1, xff2} {
			for _, hop := range strings.Split(v, ",") {
				if a, err := netip.ParseAddr(strings.TrimSpace(hop)); err == nil {
					sent[a.Unmap()] = true
				}
			}
		}
		if !sent[got] {
			t.Fatalf("client %s was never sent (XFF %q, %q)", got, xff1, xff2)
		}
	})
}
