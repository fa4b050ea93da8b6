package control

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarm-ingress/swarm-ingress/pkg/certs"
	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// ServerConfig configures a Server, the controller's end of the channel.
type ServerConfig struct {
	Secret     *Secret        // required
	Name       string         // this controller's name, shown by edges; default the host name
	Logger     zerolog.Logger // default disabled
	AckTimeout time.Duration  // longest wait for the edges to confirm a challenge; 0: 10s
	Heartbeat  time.Duration  // an empty update when idle this long, so edges notice a dead peer; 0: 5s
}

// Log field names.
const (
	fieldEdge       = "edge"
	fieldPeer       = "peer"
	fieldKey        = "key"
	fieldController = "controller"
	fieldVersion    = "version"
	fieldFile       = "file"
	fieldSetting    = "setting"
	fieldHost       = "host"
)

// writeTimeout bounds one frame's write: a peer that stops reading is dropped.
const writeTimeout = 30 * time.Second

// Server holds the controller's state (table, certificates, pending
// challenges) and sends it to every connected edge: whole on connect, then
// each change.
type Server struct {
	cfg  ServerConfig
	log  zerolog.Logger
	auth *authority

	mu         sync.Mutex
	gen        uint64 // bumped by every change of the state below
	table      *Table
	certs      map[string]Cert
	challenges map[string][]byte
	sessions   map[*session]struct{}
	changed    chan struct{} // closed and replaced on every change of gen or of a session's progress
}

// NewServer checks cfg and returns a Server that serves nobody until Serve.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Secret == nil {
		return nil, errors.New("control: Secret is required")
	}
	if cfg.Name == "" {
		cfg.Name, _ = os.Hostname()
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 10 * time.Second
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 5 * time.Second
	}
	auth, err := newAuthority(cfg.Secret)
	if err != nil {
		return nil, err
	}
	return &Server{
		cfg: cfg, log: cfg.Logger, auth: auth,
		certs: map[string]Cert{}, challenges: map[string][]byte{},
		sessions: map[*session]struct{}{}, changed: make(chan struct{}),
	}, nil
}

// SetTable publishes a new route table. Its version is the time of the
// Docker read it comes from (t.UpdatedAt); a version not above the last one
// sent (a clock stepped back) is raised just above it, so this controller's
// own stream never goes backwards.
func (s *Server) SetTable(t *route.Table) {
	v := t.UpdatedAt.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.table != nil && v <= s.table.Version {
		v = s.table.Version + 1
	}
	s.table = NewTable(t, v)
	s.bump()
}

// SetCerts replaces the certificates edges serve.
func (s *Server) SetCerts(certs []Cert) {
	next := make(map[string]Cert, len(certs))
	for _, c := range certs {
		next[c.Host] = c
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if maps.EqualFunc(next, s.certs, sameCert) {
		return
	}
	s.certs = next
	s.bump()
}

func sameCert(a, b Cert) bool {
	return a.NotBefore.Equal(b.NotBefore) && string(a.PEM) == string(b.PEM)
}

// PutChallenge sends a challenge answer to every connected edge and returns
// once each confirmed it (with none connected, once the first edge to connect
// confirmed it), or after AckTimeout, logging which edges did not
// confirm. It never fails: an edge that missed the answer only fails the
// validations that reach it.
func (s *Server) PutChallenge(ctx context.Context, key string, data []byte) {
	s.mu.Lock()
	s.challenges[key] = data
	gen := s.bump()
	s.mu.Unlock()
	s.await(ctx, gen, key)
}

// DeleteChallenge withdraws a challenge answer from the edges.
func (s *Server) DeleteChallenge(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.challenges[key]; ok {
		delete(s.challenges, key)
		s.bump()
	}
}

// bump records a change and wakes every session. Call with s.mu held.
func (s *Server) bump() uint64 {
	s.gen++
	s.wake()
	return s.gen
}

// wake wakes everyone waiting on s.changed. Call with s.mu held.
func (s *Server) wake() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// await waits until every session connected now has confirmed state gen.
// With no edge connected (a controller that has just started: edges find it
// at their next look-up of the controllers), it waits for the first edge to
// connect and confirm instead of letting the CA validate at once.
func (s *Server) await(ctx context.Context, gen uint64, key string) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AckTimeout)
	defer cancel()
	s.mu.Lock()
	waiting := slices.Collect(maps.Keys(s.sessions))
	s.mu.Unlock()
	first := len(waiting) == 0
	for {
		s.mu.Lock()
		if first {
			for ss := range s.sessions {
				first = first && ss.acked < gen
			}
		}
		waiting = slices.DeleteFunc(waiting, func(ss *session) bool { return ss.acked >= gen || ss.closed })
		ch := s.changed
		s.mu.Unlock()
		if !first && len(waiting) == 0 {
			s.log.Debug().Str(fieldKey, key).Msg("every edge confirmed the challenge")
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			if first {
				s.log.Warn().Str(fieldKey, key).
					Msg("no edge connected and confirmed the ACME challenge in time; a validation that reaches an edge will fail")
				return
			}
			names := make([]string, 0, len(waiting))
			for _, ss := range waiting {
				names = append(names, ss.name())
			}
			s.log.Warn().Str(fieldKey, key).Strs(fieldEdge, names).
				Msg("these edges did not confirm the ACME challenge in time; a validation that reaches them will fail")
			return
		}
	}
}

// Serve accepts edges on ln until ctx ends. Every connection must complete a
// TLS 1.3 handshake with a certificate signed with the same secret.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	tl := tls.NewListener(ln, s.auth.serverConfig())
	defer tl.Close()
	stop := context.AfterFunc(ctx, func() { tl.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := tl.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept edges: %w", err)
		}
		wg.Go(func() { s.serveConn(ctx, c.(*tls.Conn)) })
	}
}

// serveConn runs one edge's session until it fails or ctx ends.
func (s *Server) serveConn(ctx context.Context, c *tls.Conn) {
	defer c.Close()
	peer := c.RemoteAddr().String()
	hctx, cancel := context.WithTimeout(ctx, writeTimeout)
	err := c.HandshakeContext(hctx)
	cancel()
	if err != nil {
		s.log.Error().Err(s.auth.explainHandshake(err)).Str(fieldPeer, peer).Msg("refused a control connection")
		return
	}
	c.SetReadDeadline(time.Now().Add(writeTimeout))
	var h hello
	if err := readFrame(c, &h); err != nil {
		s.log.Warn().Err(err).Str(fieldPeer, peer).Msg("edge sent no hello")
		return
	}
	c.SetReadDeadline(time.Time{})
	ss := &session{srv: s, conn: c, edge: h.Edge, peer: peer, sentCerts: map[string]Cert{}, sentChallenges: map[string][]byte{}, gens: map[uint64]uint64{}}
	s.mu.Lock()
	s.sessions[ss] = struct{}{}
	s.mu.Unlock()
	s.log.Info().Str(fieldEdge, h.Edge).Str(fieldPeer, peer).Msg("edge connected")

	ctx, cancel = context.WithCancel(ctx)
	defer cancel()
	context.AfterFunc(ctx, func() { c.Close() }) // unblocks the ack reader
	readErr := make(chan error, 1)
	go func() { readErr <- ss.readAcks() }()
	err = ss.write(ctx, readErr)

	s.mu.Lock()
	delete(s.sessions, ss)
	ss.closed = true
	s.wake()
	s.mu.Unlock()
	if ctx.Err() == nil || err != nil {
		s.log.Info().Err(err).Str(fieldEdge, h.Edge).Str(fieldPeer, peer).Msg("edge disconnected")
	}
}

// Challenges is the server as the certificate manager's challenge sink:
// every answer autocert stores reaches the edges before the CA validates.
func (s *Server) Challenges() certs.Challenges { return challengeSink{s} }

type challengeSink struct{ s *Server }

func (c challengeSink) Put(ctx context.Context, key string, data []byte) {
	c.s.PutChallenge(ctx, key, data)
}
func (c challengeSink) Delete(key string) { c.s.DeleteChallenge(key) }
