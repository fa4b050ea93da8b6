package pebbletest

import (
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// startDNS serves, on a TCP port of 127.0.0.1 (Pebble asks over TCP), an A
// record target for every name and no other records, and returns its
// address.
func startDNS(t testing.TB, target netip.Addr) string {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pebbletest: listen for DNS: %v", err)
	}
	started := make(chan struct{})
	srv := &dns.Server{
		Listener:          l,
		Handler:           dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) { answer(w, q, target) }),
		NotifyStartedFunc: func() { close(started) },
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ActivateAndServe()
	}()
	<-started
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-done
	})
	return l.Addr().String()
}

func answer(w dns.ResponseWriter, q *dns.Msg, target netip.Addr) {
	m := new(dns.Msg)
	m.SetReply(q)
	for _, question := range q.Question {
		if question.Qtype != dns.TypeA {
			continue
		}
		m.Answer = append(m.Answer, &dns.A{
			Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 0},
			A:   target.AsSlice(),
		})
	}
	_ = w.WriteMsg(m)
}
