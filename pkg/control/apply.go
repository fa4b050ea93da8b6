package control

import (
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// apply merges one update from l into the edge's state (the rule is in
// doc.go), publishes a changed table and saves the state when it changed.
func (e *Edge) apply(l *link, u *update) {
	e.mu.Lock()
	l.connected, l.err = true, ""
	if u.Full {
		l.controller, l.challenges = u.Controller, map[string][]byte{}
	}
	e.confirmed = time.Now()
	var publish *route.Table
	save := false
	if t := u.Table; t != nil {
		switch {
		case e.wire != nil && t.Version <= e.wire.Version:
			e.log.Debug().Str(fieldController, l.addr).Int64(fieldVersion, t.Version).
				Int64("held", e.wire.Version).Msg("ignored a table not newer than the one held")
		case t.Partial && e.wire != nil && !e.wire.Partial:
			e.log.Warn().Str(fieldController, l.addr).Int64(fieldVersion, t.Version).
				Msg("ignored a partial table (that controller has not read Docker yet); keeping the complete one held")
		default:
			built := t.Build()
			if !built.SameContent(e.table) {
				publish = built
			}
			e.table, e.wire, e.from, save = built, t, l.name(), true
			e.pruneCerts()
		}
	}
	for _, c := range u.Certs {
		if held := e.certs[c.Host]; held != nil && !c.NotBefore.After(held.NotBefore) {
			continue
		}
		parsed, err := parsePEM(c.PEM)
		if err != nil {
			e.log.Error().Err(err).Str(fieldHost, c.Host).Msg("received an unusable certificate; keeping the one held")
			continue
		}
		e.certs[c.Host] = &heldCert{Cert: c, tls: parsed}
		save = true
	}
	for _, ch := range u.Challenges {
		if ch.Data == nil {
			delete(l.challenges, ch.Key)
		} else {
			l.challenges[ch.Key] = ch.Data
		}
	}
	e.notify()
	e.mu.Unlock()
	if publish != nil {
		e.cfg.OnTable(publish)
	}
	if save {
		e.save()
	}
}

// name is the controller's name and address, for logs and the status.
func (l *link) name() string {
	if l.controller == "" {
		return l.addr
	}
	return l.controller + " (" + l.addr + ")"
}

// pruneCerts drops certificates of hosts no tls=auto route of the held table
// names. Call with e.mu held.
func (e *Edge) pruneCerts() {
	keep := map[string]bool{}
	for _, r := range e.table.Routes {
		if r.TLSAuto() {
			for _, h := range r.Hosts {
				keep[h] = true
			}
		}
	}
	for h := range e.certs {
		if !keep[h] {
			delete(e.certs, h)
		}
	}
}

// notify wakes everyone waiting on e.changed. Call with e.mu held.
func (e *Edge) notify() {
	close(e.changed)
	e.changed = make(chan struct{})
}

// parsePEM reads a private key block and a certificate chain, in any order,
// the way autocert caches them.
func parsePEM(data []byte) (*tls.Certificate, error) {
	var certs, key []byte
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			certs = append(certs, pem.EncodeToMemory(b)...)
		} else {
			key = append(key, pem.EncodeToMemory(b)...)
		}
	}
	if certs == nil || key == nil {
		return nil, errors.New("want a private key and a certificate chain in PEM")
	}
	c, err := tls.X509KeyPair(certs, key)
	if err != nil {
		return nil, fmt.Errorf("certificate and key: %w", err)
	}
	return &c, nil
}
