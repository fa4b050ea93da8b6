package control

import (
	"context"
	"crypto/tls"
	"fmt"
	"maps"
	"time"
)

// session is one connected edge, seen from the controller. Its fields are
// guarded by Server.mu, except conn.
type session struct {
	srv  *Server
	conn *tls.Conn
	edge string // the name in the edge's hello
	peer string // its address

	seq            uint64            // last update sent
	gens           map[uint64]uint64 // update seq -> state gen it brought the edge to, until acknowledged
	acked          uint64            // state gen the edge confirmed
	closed         bool
	sentTable      int64 // version of the table sent
	sentCerts      map[string]Cert
	sentChallenges map[string][]byte
}

func (ss *session) name() string { return ss.edge + " (" + ss.peer + ")" }

// write sends the full state, then every change, until the connection fails,
// the ack reader stops or ctx ends. When idle it sends an empty update every
// Heartbeat.
func (ss *session) write(ctx context.Context, readErr <-chan error) error {
	s := ss.srv
	beat := time.NewTimer(0)
	defer beat.Stop()
	for {
		s.mu.Lock()
		u, gen := ss.next()
		ch := s.changed
		if u == nil {
			ss.reached(ss.seq, gen)
		}
		s.mu.Unlock()
		if u != nil {
			if err := ss.send(u); err != nil {
				return err
			}
			beat.Reset(s.cfg.Heartbeat)
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-readErr:
			return err
		case <-ch:
		case <-beat.C:
			s.mu.Lock()
			ss.seq++
			u := &update{Seq: ss.seq}
			ss.gens[ss.seq] = 0
			s.mu.Unlock()
			if err := ss.send(u); err != nil {
				return err
			}
			beat.Reset(s.cfg.Heartbeat)
		}
	}
}

func (ss *session) send(u *update) error {
	ss.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return writeFrame(ss.conn, u)
}

// next returns the update that brings the edge to the server's current
// state (nil: the edge has been sent everything) and that state's gen. Call
// with Server.mu held.
func (ss *session) next() (*update, uint64) {
	s := ss.srv
	u := &update{Seq: ss.seq + 1, Full: ss.seq == 0}
	if u.Full {
		u.Controller = s.cfg.Name
	}
	if s.table != nil && s.table.Version != ss.sentTable {
		u.Table = s.table
		ss.sentTable = s.table.Version
	}
	for _, h := range sortedKeys(s.certs) {
		c := s.certs[h]
		if sent, ok := ss.sentCerts[h]; !ok || !sameCert(sent, c) {
			u.Certs = append(u.Certs, c)
		}
	}
	ss.sentCerts = maps.Clone(s.certs)
	for _, k := range sortedKeys(s.challenges) {
		if sent, ok := ss.sentChallenges[k]; !ok || string(sent) != string(s.challenges[k]) {
			u.Challenges = append(u.Challenges, Challenge{Key: k, Data: s.challenges[k]})
		}
	}
	for _, k := range sortedKeys(ss.sentChallenges) {
		if _, ok := s.challenges[k]; !ok {
			u.Challenges = append(u.Challenges, Challenge{Key: k})
		}
	}
	ss.sentChallenges = maps.Clone(s.challenges)
	if !u.Full && u.Table == nil && len(u.Certs) == 0 && len(u.Challenges) == 0 {
		return nil, s.gen
	}
	ss.seq = u.Seq
	ss.gens[u.Seq] = s.gen
	return u, s.gen
}

// reached records that once the edge acknowledges seq it holds state gen.
// Call with Server.mu held.
func (ss *session) reached(seq, gen uint64) {
	if seq <= ss.ackedSeq() {
		ss.confirm(gen)
		return
	}
	ss.gens[seq] = max(ss.gens[seq], gen)
}

// ackedSeq is the highest seq acknowledged: every seq below the lowest one
// still waiting. Call with Server.mu held.
func (ss *session) ackedSeq() uint64 {
	lowest := ss.seq + 1
	for seq := range ss.gens {
		lowest = min(lowest, seq)
	}
	return lowest - 1
}

func (ss *session) confirm(gen uint64) {
	if gen > ss.acked {
		ss.acked = gen
		ss.srv.wake()
	}
}

// readAcks reads the edge's acknowledgements until the connection fails.
func (ss *session) readAcks() error {
	s := ss.srv
	for {
		var a ack
		if err := readFrame(ss.conn, &a); err != nil {
			return fmt.Errorf("read acknowledgement: %w", err)
		}
		s.mu.Lock()
		if a.Seq > ss.seq {
			s.mu.Unlock()
			return fmt.Errorf("edge acknowledged update %d, only %d were sent", a.Seq, ss.seq)
		}
		for seq, gen := range ss.gens {
			if seq <= a.Seq {
				ss.confirm(gen)
				delete(ss.gens, seq)
			}
		}
		s.mu.Unlock()
	}
}
