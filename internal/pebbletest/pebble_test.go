package pebbletest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/acme"
)

// TestIssueHTTP01 proves the rig: DNS points Pebble at our http-01 server,
// the order and the validation are counted, the certificate verifies against IssuerRoots, and a
// restart on the same ports works.
func TestIssueHTTP01(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	tokens := map[string]string{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		body, ok := tokens[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(body))
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	p := New(t, Config{HTTPPort: l.Addr().(*net.TCPAddr).Port})
	if got := p.Orders(); got != 0 {
		t.Fatalf("Orders before any order = %d, want 0", got)
	}

	issue := func(domain string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		c := &acme.Client{Key: key, DirectoryURL: p.DirectoryURL, HTTPClient: p.HTTPClient()}
		if _, err := c.Register(ctx, &acme.Account{}, acme.AcceptTOS); err != nil {
			t.Fatalf("register: %v", err)
		}
		o, err := c.AuthorizeOrder(ctx, acme.DomainIDs(domain))
		if err != nil {
			t.Fatalf("order: %v", err)
		}
		for _, u := range o.AuthzURLs {
			z, err := c.GetAuthorization(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			var chal *acme.Challenge
			for _, ch := range z.Challenges {
				if ch.Type == "http-01" {
					chal = ch
				}
			}
			if chal == nil {
				t.Fatalf("no http-01 challenge in %+v", z.Challenges)
			}
			resp, err := c.HTTP01ChallengeResponse(chal.Token)
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			tokens[c.HTTP01ChallengePath(chal.Token)] = resp
			mu.Unlock()
			if _, err := c.Accept(ctx, chal); err != nil {
				t.Fatal(err)
			}
			if _, err := c.WaitAuthorization(ctx, z.URI); err != nil {
				t.Fatalf("authorization: %v", err)
			}
		}
		if _, err := c.WaitOrder(ctx, o.URI); err != nil {
			t.Fatalf("wait order: %v", err)
		}
		certKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{domain}}, certKey)
		if err != nil {
			t.Fatal(err)
		}
		der, _, err := c.CreateCertFromOrder(ctx, o, csr, true)
		if err != nil {
			t.Fatalf("finalize: %v", err)
		}
		leaf, err := x509.ParseCertificate(der[0])
		if err != nil {
			t.Fatal(err)
		}
		inter := x509.NewCertPool()
		for _, b := range der[1:] {
			c, err := x509.ParseCertificate(b)
			if err != nil {
				t.Fatal(err)
			}
			inter.AddCert(c)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: domain, Roots: p.IssuerRoots(t), Intermediates: inter}); err != nil {
			t.Fatalf("issued certificate does not verify against IssuerRoots: %v", err)
		}
	}

	issue("one.example.test")
	if got := p.Orders(); got != 1 {
		t.Fatalf("Orders after one order = %d, want 1", got)
	}
	if v := p.Validations(); v.Valid != 1 || v.Invalid != 0 || v.HTTP01Requests == 0 {
		t.Fatalf("Validations after one http-01 validation = %+v, want 1 valid, 0 invalid, some HTTP-01 requests", v)
	}
	p.Stop()
	p.Start()
	issue("two.example.test")
	if got := p.Orders(); got != 2 {
		t.Fatalf("Orders after a restart and a second order = %d, want 2", got)
	}
}
