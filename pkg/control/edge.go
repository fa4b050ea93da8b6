package control

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// EdgeConfig configures an Edge, the serving end of the channel.
type EdgeConfig struct {
	Secret      *Secret                                                           // required
	Controllers Locator                                                           // required
	Name        string                                                            // this edge's name in the controllers' logs; default the host name
	StateFile   string                                                            // where the last state is kept across restarts; "": nowhere
	Logger      zerolog.Logger                                                    // default disabled
	OnTable     func(*route.Table)                                                // called with every table whose content differs from the last
	Dial        func(ctx context.Context, network, addr string) (net.Conn, error) // default net.Dialer
	Rescan      time.Duration                                                     // how often Controllers is asked again; 0: 5s
	Silence     time.Duration                                                     // a controller silent this long is dropped; 0: 15s (three heartbeats)
}

// Reconnect delays to one controller address.
const (
	retryMin    = 250 * time.Millisecond
	retryMax    = 10 * time.Second
	dialTimeout = 5 * time.Second
)

var errDial = errors.New("dial")

// Edge receives state from every controller it finds and keeps the newest:
// the table with the highest version, the newest certificate of each host,
// and the pending challenges of every connected controller.
type Edge struct {
	cfg  EdgeConfig
	log  zerolog.Logger
	auth *authority

	mu        sync.Mutex
	table     *route.Table
	wire      *Table    // the table as received, for the state file
	from      string    // the controller whose table is held
	confirmed time.Time // last time a controller sent anything (or the state file was saved)
	certs     map[string]*heldCert
	links     map[string]*link // by controller address
	wanted    map[string]bool  // addresses the last lookup returned
	changed   chan struct{}    // closed and replaced on every applied update

	saveMu sync.Mutex // one state file write at a time
}

// heldCert is a received certificate, parsed for handshakes.
type heldCert struct {
	Cert
	tls *tls.Certificate
}

// link is the edge's view of one controller address.
type link struct {
	addr       string
	controller string // its name, from its first update
	connected  bool
	err        string
	challenges map[string][]byte
}

// NewEdge checks cfg and loads the state file if there is one; the edge
// serves that state until a controller sends a newer one.
func NewEdge(cfg EdgeConfig) (*Edge, error) {
	if cfg.Secret == nil || cfg.Controllers == nil {
		return nil, errors.New("control: Secret and Controllers are required")
	}
	if cfg.Name == "" {
		cfg.Name, _ = os.Hostname()
	}
	if cfg.OnTable == nil {
		cfg.OnTable = func(*route.Table) {}
	}
	if cfg.Dial == nil {
		d := &net.Dialer{Timeout: dialTimeout}
		cfg.Dial = d.DialContext
	}
	if cfg.Rescan <= 0 {
		cfg.Rescan = 5 * time.Second
	}
	if cfg.Silence <= 0 {
		cfg.Silence = 15 * time.Second
	}
	auth, err := newAuthority(cfg.Secret)
	if err != nil {
		return nil, err
	}
	e := &Edge{cfg: cfg, log: cfg.Logger, auth: auth, certs: map[string]*heldCert{},
		links: map[string]*link{}, wanted: map[string]bool{}, changed: make(chan struct{})}
	e.load()
	return e, nil
}

// Table returns the table being served (nil before any state).
func (e *Edge) Table() *route.Table {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.table
}

// Run connects to every controller the Locator names, and keeps connecting,
// until ctx ends. It returns nil when ctx ends.
func (e *Edge) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTimer(0)
	defer tick.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		tick.Reset(e.cfg.Rescan)
		addrs, err := e.cfg.Controllers(ctx)
		if err != nil {
			if err.Error() != lastErr {
				e.log.Warn().Err(err).Msg("cannot list the controllers; serving the last state")
			}
			lastErr = err.Error()
			continue
		}
		lastErr = ""
		e.mu.Lock()
		e.wanted = map[string]bool{}
		for _, a := range addrs {
			e.wanted[a] = true
			if _, ok := e.links[a]; !ok {
				l := &link{addr: a}
				e.links[a] = l
				wg.Go(func() { e.follow(ctx, l) })
			}
		}
		e.mu.Unlock()
	}
}

// follow keeps a session with one controller address until ctx ends or the
// address leaves the list, reconnecting with backoff.
func (e *Edge) follow(ctx context.Context, l *link) {
	wait := retryMin
	var last string
	for ctx.Err() == nil {
		start := time.Now()
		err := e.session(ctx, l)
		if err != nil && errors.Is(err, errDial) && err.Error() != last {
			e.log.Warn().Err(err).Str(fieldController, l.addr).Msg("cannot reach a controller; retrying")
		}
		if err != nil {
			last = err.Error()
		}
		e.mu.Lock()
		l.connected, l.challenges = false, nil
		if err != nil {
			l.err = err.Error()
		}
		gone := !e.wanted[l.addr]
		if gone {
			delete(e.links, l.addr)
		}
		e.notify()
		e.mu.Unlock()
		if ctx.Err() != nil || gone {
			return
		}
		if time.Since(start) > retryMax {
			wait = retryMin // it was up for a while: this is a new failure
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMax)
	}
}

// session runs one connection to l: handshake, hello, then updates applied
// and acknowledged one by one, until the connection fails or ctx ends.
func (e *Edge) session(ctx context.Context, l *link) error {
	log := e.log.With().Str(fieldController, l.addr).Logger()
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	raw, err := e.cfg.Dial(dctx, "tcp", l.addr)
	if err != nil {
		cancel()
		return fmt.Errorf("%w: %w", errDial, err)
	}
	c := tls.Client(raw, e.auth.clientConfig())
	err = c.HandshakeContext(dctx)
	cancel()
	if err != nil {
		raw.Close()
		err = e.auth.explainHandshake(err)
		log.Error().Err(err).Msg("refused by the controller or refused it")
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	c.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := writeFrame(c, hello{Edge: e.cfg.Name}); err != nil {
		return err
	}
	for {
		c.SetReadDeadline(time.Now().Add(e.cfg.Silence))
		var u update
		if err := readFrame(c, &u); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Warn().Err(err).Msg("lost the controller; serving the last state")
			return fmt.Errorf("read update: %w", err)
		}
		if u.Full {
			log.Info().Str(fieldEdge, e.cfg.Name).Str("name", u.Controller).Msg("connected to a controller")
		}
		e.apply(l, &u)
		c.SetWriteDeadline(time.Now().Add(writeTimeout))
		if err := writeFrame(c, ack{Seq: u.Seq}); err != nil {
			return err
		}
	}
}
