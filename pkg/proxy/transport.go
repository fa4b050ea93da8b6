package proxy

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/proxy/internal/h1"
	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// Transport tuning. Pools are per upstream address and shared by every route
// with the same scheme and timeouts; they survive table swaps.
const (
	idleConnTimeout     = 90 * time.Second
	maxIdleConnsPerHost = 256 // a busy route keeps its connections warm
	tlsHandshakeTimeout = 10 * time.Second

	// maxResponseHead bounds the response head of an upstream (status line
	// and headers, 1xx responses included) on the HTTP/1.1 client, like
	// http.Transport's MaxResponseHeaderBytes but tighter than its 10 MB
	// default. The bound is on bytes, so it also bounds a single header line
	// and the number of headers.
	maxResponseHead = 1 << 20

	// Per-connection buffers, as h1's (see h1.BufferSize).
	connWriteBuffer = h1.BufferSize
	connReadBuffer  = h1.BufferSize
)

// keepAlive probes a connection that has been quiet for Idle, every
// Interval, and drops it after Count probes go unanswered: a stream (which
// has no idle timeout) whose peer vanished without closing ends within about
// a minute. The listeners use it too (Listen).
var keepAlive = net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 10 * time.Second, Count: 3}

var dialer = &net.Dialer{KeepAliveConfig: keepAlive} // the timeout comes with the context

// dialTCP4 dials over IPv4: upstreams are IPv4 literals and are only ever
// dialled over IPv4.
func dialTCP4(ctx context.Context, addr string) (net.Conn, error) {
	return dialer.DialContext(ctx, "tcp4", addr)
}

// upstreamUserTimeout is how long data sent to an upstream may stay
// unacknowledged before the kernel ends the connection (Linux
// TCP_USER_TIMEOUT, usertimeout_linux.go). A live peer acknowledges within
// milliseconds on a swarm's overlay, even while it does not read, and a
// lost segment is resent after 200 ms and again 400 ms later: 1 s is lost
// segments, not a slow peer. It is not connect_timeout (5 s by default): a
// request written on a pooled connection to a task whose node was cut off
// would wait that long before its retry, where a new connection to it is
// hedged after 250 ms (hedge.go).
const upstreamUserTimeout = time.Second

type dialFunc = func(ctx context.Context, addr string) (net.Conn, error)

// dialUpstream dials every upstream connection: dialTCP4 with
// TCP_USER_TIMEOUT set to upstreamUserTimeout.
var dialUpstream dialFunc = func() dialFunc {
	d := *dialer
	d.Control = userTimeout(upstreamUserTimeout)
	return func(ctx context.Context, addr string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp4", addr)
	}
}()

// upstreamDial is the dial function of the HTTP/1.1 transports:
// dialUpstream, or the one tests set (dialHook).
func (h *Handler) upstreamDial() dialFunc {
	if h.dialHook != nil {
		return h.dialHook
	}
	return dialUpstream
}

// transportKey identifies one shared transport. The response header and
// connect timeouts are transport settings, so each distinct pair gets its
// own transport (in practice a handful: most routes keep the defaults).
type transportKey struct {
	scheme           string
	timeout, connect time.Duration
}

// transport returns the shared transport for a route's scheme and timeouts,
// creating it on first use: h1.Transport for plain HTTP (the common case and
// the hot path), http.Transport for https and h2c. It runs under h.mu.
func (h *Handler) transport(scheme string, b route.Bounds) http.RoundTripper {
	k := transportKey{scheme, b.Header, b.Connect}
	if t := h.transports[k]; t != nil {
		return t
	}
	var t http.RoundTripper
	if scheme == route.SchemeHTTP || scheme == "" {
		t = h1.New(h1.Config{
			Dial:            h.upstreamDial(),
			HeaderTimeout:   b.Header,
			ConnectTimeout:  b.Connect,
			MaxResponseHead: maxResponseHead,
			MaxIdlePerHost:  maxIdleConnsPerHost,
			IdleTimeout:     idleConnTimeout,
		})
	} else {
		t = newTransport(scheme, b.Header, b.Connect)
	}
	h.transports[k] = t
	return t
}

// newTransport builds an upstream http.Transport for https and h2c.
//
// scheme=https: upstreams are task or virtual IPs on a private overlay
// network, which no public certificate names, and services there commonly
// use self-signed ones. The transport therefore encrypts but does not verify
// the upstream certificate (InsecureSkipVerify, no ServerName). The overlay,
// not the certificate, is what authenticates the peer.
//
// scheme=h2c: HTTP/2 with prior knowledge over plain TCP (the standard
// library's unencrypted HTTP/2 support, Go 1.24+); the dialer is the same.
//
// https speaks HTTP/1.1 only, so that Upgrade requests pass through.
func newTransport(scheme string, timeout, connect time.Duration) *http.Transport {
	var protocols http.Protocols
	if scheme == route.SchemeH2C {
		protocols.SetUnencryptedHTTP2(true)
	} else {
		protocols.SetHTTP1(true)
	}
	dial := dialUpstream
	return &http.Transport{
		Proxy: nil, // never an environment proxy
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, connect)
			defer cancel()
			return dial(ctx, addr)
		},
		Protocols:             &protocols,
		MaxIdleConnsPerHost:   maxIdleConnsPerHost,
		IdleConnTimeout:       idleConnTimeout,
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
		WriteBufferSize:       connWriteBuffer,
		ReadBufferSize:        connReadBuffer,
		// Pass the client's Accept-Encoding through untouched and never
		// decompress: streams must not wait on a gzip reader.
		DisableCompression: true,
		TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, // see above: IP upstreams on a private overlay
			MinVersion:         tls.VersionTLS12,
		},
	}
}

// closeTransports stops the transports' pools (the HTTP/1.1 client's
// sweeper) and closes their idle connections. It runs under h.mu.
func (h *Handler) closeTransports() {
	for _, t := range h.transports {
		switch t := t.(type) {
		case *h1.Transport:
			_ = t.Close()
		case *http.Transport:
			t.CloseIdleConnections()
		}
	}
}
