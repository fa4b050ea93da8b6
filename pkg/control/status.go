package control

import (
	"time"
)

// Status is the edge's state for its admin API (GET /readyz; docs/admin-api.md).
type Status struct {
	Ready       bool               `json:"ready"`       // a table is held
	Version     int64              `json:"version"`     // of the held table
	From        string             `json:"from"`        // the controller whose table is served
	Confirmed   time.Time          `json:"confirmed"`   // last time a controller sent anything (or the saved state's time)
	AgeSeconds  float64            `json:"age_seconds"` // time since Confirmed
	Certs       int                `json:"certs"`       // certificates held
	Controllers []ControllerStatus `json:"controllers"` // every address being followed
}

// ControllerStatus is one controller address an edge follows.
type ControllerStatus struct {
	Addr      string `json:"addr"`
	Name      string `json:"name"`
	Connected bool   `json:"connected"`
	Error     string `json:"error,omitempty"`
}

// Status reports what the edge holds and which controllers it is connected to.
func (e *Edge) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Status{Ready: e.table != nil, From: e.from, Confirmed: e.confirmed, Certs: len(e.certs), Controllers: []ControllerStatus{}}
	if e.wire != nil {
		s.Version = e.wire.Version
	}
	if !e.confirmed.IsZero() {
		s.AgeSeconds = time.Since(e.confirmed).Seconds()
	}
	for _, a := range sortedKeys(e.links) {
		l := e.links[a]
		s.Controllers = append(s.Controllers, ControllerStatus{Addr: a, Name: l.controller, Connected: l.connected, Error: l.err})
	}
	return s
}

// Changed is closed at the next update an edge applies (tests wait on it).
func (e *Edge) Changed() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.changed
}

// HeldCert is one certificate an edge serves, for its admin API.
type HeldCert struct {
	Host     string
	NotAfter time.Time
}

// Certs lists the certificates the edge holds, sorted by host.
func (e *Edge) Certs() []HeldCert {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]HeldCert, 0, len(e.certs))
	for _, h := range sortedKeys(e.certs) {
		c := HeldCert{Host: h}
		if leaf := e.certs[h].tls.Leaf; leaf != nil {
			c.NotAfter = leaf.NotAfter
		}
		out = append(out, c)
	}
	return out
}
