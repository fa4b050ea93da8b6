package proxy

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/net/http/httpguts"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// Compression of responses, opt-in per route (docs/labels.md,
// "Compression"). A compressor sits between the exchange and the client's
// ResponseWriter and decides when the response head is written:
//
//   - never for HEAD, a Range request, an Upgrade, a stream=true route; nor
//     for a 1xx, 204, 206 or 304, a response that already has a
//     Content-Encoding or a Content-Range, Cache-Control: no-transform, or
//     text/event-stream; only for the route's compress.types;
//   - Vary: Accept-Encoding is added to every response of those types, so
//     that caches keep the encodings apart;
//   - the encoding is the one the client's Accept-Encoding gives the highest
//     q-value among the route's; zstd on a tie (smaller and faster);
//   - with a Content-Length below compress.min_size the response is sent as
//     it is; without one, up to min_size bytes are held back: a body that
//     ends first is sent as it is (with its length), a longer one or one
//     that is flushed first is compressed. Nothing more is ever buffered.
//     (The proxy flushes after every piece of a body of unknown length, so
//     that streams flow: through it, such a body is compressed from its
//     first piece, as Nginx does);
//   - a flush (a stream of another type) flushes the encoder, so that every
//     piece reaches the client at once.
//
// Encoders are pooled. Measured on a 100 KB JSON document: a gzip writer
// at level 5 holds about 1 MiB of state (13.6% of the input out); a zstd
// encoder at its fastest level, without goroutines, with a 64 KiB window
// and in low-memory mode, about 650 KiB (13.4% out; its default level with
// a 256 KiB window holds 1.6 MiB for 0.6% less). An idle encoder is dropped
// by the pool at the next garbage collections.

const (
	gzipLevel  = 5       // klauspost's level 5: near the default ratio at a fraction of its CPU
	zstdWindow = 1 << 16 // browsers accept windows up to 8 MiB; a small one keeps encoders small
)

// compressConfig is a route's compression, prepared once per table.
type compressConfig struct {
	encodings []string
	types     map[string]bool // "application/json"
	prefixes  []string        // "text/" from "text/*"
	minSize   int64
}

func prepareCompress(r *route.Route) *compressConfig {
	c := r.Compress
	if len(c.Encodings) == 0 || r.Stream {
		return nil
	}
	cc := &compressConfig{encodings: c.Encodings, types: map[string]bool{}, minSize: c.MinSize}
	for _, t := range c.Types {
		if p, ok := strings.CutSuffix(t, "/*"); ok {
			cc.prefixes = append(cc.prefixes, p+"/")
		} else {
			cc.types[t] = true
		}
	}
	return cc
}

// compressible reports whether the Content-Type ct is one of the route's.
func (c *compressConfig) compressible(ct string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.ToLower(strings.TrimSpace(ct))
	if ct == "" || isEventStream(ct) {
		return false
	}
	if c.types[ct] {
		return true
	}
	for _, p := range c.prefixes {
		if strings.HasPrefix(ct, p) {
			return true
		}
	}
	return false
}

// compressor wraps ex's ResponseWriter for a request that may get a
// compressed answer, or returns nil. Its finish must be deferred by the
// caller, directly (it recovers a panic to tell a cut response from a
// complete one).
func (rs *routeState) compressor(ex *exchange, r *http.Request) *compressWriter {
	c := rs.compress
	if c == nil || r.Method == http.MethodHead || r.Header["Range"] != nil || r.Header["Upgrade"] != nil {
		return nil
	}
	cw := &compressWriter{ResponseWriter: ex.ResponseWriter, cfg: c, ex: ex, accept: r.Header["Accept-Encoding"]}
	cw.dst.w = ex.ResponseWriter
	ex.ResponseWriter = cw
	return cw
}

// The states of a compressWriter.
const (
	cwHead     = iota // no head written yet
	cwHolding         // the head is held while the first min_size bytes are measured
	cwEncoding        // compressing
	cwPlain           // passing through
)

type compressWriter struct {
	http.ResponseWriter
	cfg    *compressConfig
	ex     *exchange
	accept []string // the request's Accept-Encoding

	state    int
	code     int     // the held status
	encoding string  // chosen encoding
	held     *[]byte // body bytes held back (cwHolding)
	enc      encoder
	dst      countingWriter
}

// encoder is a pooled gzip or zstd writer.
type encoder interface {
	io.WriteCloser
	Flush() error
	Reset(io.Writer)
}

var encoderPools = map[string]*sync.Pool{
	route.EncodingGzip: {New: func() any {
		w, _ := gzip.NewWriterLevel(nil, gzipLevel)
		return w
	}},
	route.EncodingZstd: {New: func() any {
		e, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithWindowSize(zstdWindow), zstd.WithLowerEncoderMem(true))
		return e
	}},
}

var heldBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// countingWriter counts the bytes that reach the client.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (cw *compressWriter) WriteHeader(code int) {
	if code < 200 {
		cw.ResponseWriter.WriteHeader(code)
		return
	}
	if cw.state != cwHead {
		return
	}
	h := cw.Header()
	if !cw.eligible(code, h) {
		cw.plain(code)
		return
	}
	if !varyHas(h, "Accept-Encoding") {
		h.Add("Vary", "Accept-Encoding")
	}
	cw.encoding = chooseEncoding(cw.accept, cw.cfg.encodings)
	if cw.encoding == "" {
		cw.plain(code)
		return
	}
	if cl := h.Get("Content-Length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < cw.cfg.minSize {
			cw.plain(code)
			return
		}
		cw.start(code)
		return
	}
	cw.state, cw.code = cwHolding, code
	cw.held = heldBuffers.Get().(*[]byte)
}

// eligible applies the response-side exclusions and the types.
func (cw *compressWriter) eligible(code int, h http.Header) bool {
	switch code {
	case http.StatusNoContent, http.StatusPartialContent, http.StatusNotModified:
		return false
	}
	if ce := h.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return false
	}
	if h["Content-Range"] != nil || httpguts.HeaderValuesContainsToken(h["Cache-Control"], "no-transform") {
		return false
	}
	return cw.cfg.compressible(h.Get("Content-Type"))
}

func (cw *compressWriter) plain(code int) {
	cw.state = cwPlain
	cw.ResponseWriter.WriteHeader(code)
}

// start writes the head of a compressed response and takes an encoder.
func (cw *compressWriter) start(code int) {
	h := cw.Header()
	h.Del("Content-Length")
	h.Del("Accept-Ranges")
	h.Set("Content-Encoding", cw.encoding)
	if et := h.Get("Etag"); et != "" && !strings.HasPrefix(et, "W/") {
		h.Set("Etag", "W/"+et) // the bytes differ: a strong validator no longer holds
	}
	cw.ResponseWriter.WriteHeader(code)
	cw.enc = encoderPools[cw.encoding].Get().(encoder)
	cw.enc.Reset(&cw.dst)
	cw.state = cwEncoding
}

func (cw *compressWriter) Write(p []byte) (int, error) {
	if cw.state == cwHead {
		cw.WriteHeader(http.StatusOK)
	}
	switch cw.state {
	case cwEncoding:
		return cw.enc.Write(p)
	case cwHolding:
		held := *cw.held
		if int64(len(held)+len(p)) < cw.cfg.minSize {
			*cw.held = append(held, p...)
			return len(p), nil
		}
		if err := cw.release(); err != nil {
			return 0, err
		}
		return cw.enc.Write(p)
	}
	return cw.ResponseWriter.Write(p)
}

// release ends holding: the head goes out compressed, with what was held.
func (cw *compressWriter) release() error {
	cw.start(cw.code)
	held := *cw.held
	cw.putHeld()
	if len(held) == 0 {
		return nil
	}
	_, err := cw.enc.Write(held)
	return err
}

func (cw *compressWriter) putHeld() {
	*cw.held = (*cw.held)[:0]
	heldBuffers.Put(cw.held)
	cw.held = nil
}

func (cw *compressWriter) Flush() { _ = cw.FlushError() }

// FlushError sends what was written so far. A held response with bytes
// held is compressed from here on (it streams: its length is unknown); one
// with nothing held yet keeps its head until its first bytes.
func (cw *compressWriter) FlushError() error {
	switch cw.state {
	case cwHolding:
		if len(*cw.held) == 0 {
			return nil
		}
		if err := cw.release(); err != nil {
			return err
		}
		fallthrough
	case cwEncoding:
		if err := cw.enc.Flush(); err != nil {
			return err
		}
	}
	switch f := cw.ResponseWriter.(type) {
	case interface{ FlushError() error }:
		return f.FlushError()
	case http.Flusher:
		f.Flush()
	}
	return nil
}

// Unwrap lets http.ResponseController reach Hijack and deadlines.
func (cw *compressWriter) Unwrap() http.ResponseWriter { return cw.ResponseWriter }

// finish ends the response: a held body is sent as it is, with its length;
// a compressed one gets its end (the gzip trailer, the zstd frame end), and
// the access log counts the bytes sent. A panic (a response cut short,
// http.ErrAbortHandler) must not end the encoding cleanly: the client would
// take the cut body for complete. It is passed on.
func (cw *compressWriter) finish() {
	if p := recover(); p != nil {
		cw.drop()
		panic(p)
	}
	if cw.ex.hijacked {
		cw.drop()
		return
	}
	switch cw.state {
	case cwHolding:
		held := *cw.held
		cw.Header().Set("Content-Length", strconv.Itoa(len(held)))
		cw.ResponseWriter.WriteHeader(cw.code)
		_, _ = cw.ResponseWriter.Write(held)
		cw.putHeld()
		cw.state = cwPlain
	case cwEncoding:
		_ = cw.enc.Close()
		cw.ex.bytes = cw.dst.n
		cw.drop()
	}
}

// drop returns the encoder and the held buffer to their pools.
func (cw *compressWriter) drop() {
	if cw.held != nil {
		cw.putHeld()
	}
	if cw.enc != nil {
		cw.enc.Reset(nil)
		encoderPools[cw.encoding].Put(cw.enc)
		cw.enc = nil
	}
}

// varyHas reports whether Vary already names field (or is "*").
func varyHas(h http.Header, field string) bool {
	for _, v := range h["Vary"] {
		for f := range strings.SplitSeq(v, ",") {
			f = strings.TrimSpace(f)
			if f == "*" || strings.EqualFold(f, field) {
				return true
			}
		}
	}
	return false
}

// chooseEncoding returns the offered encoding with the highest q-value in
// the Accept-Encoding values (a "*" counts for an encoding not named), the
// first offered on a tie, or "" when none is acceptable (q=0 or absent).
func chooseEncoding(accept []string, offered []string) string {
	if len(accept) == 0 {
		return ""
	}
	best, bestQ := "", 0.0
	for _, enc := range offered {
		q, named, star := 0.0, false, -1.0
		for _, v := range accept {
			for item := range strings.SplitSeq(v, ",") {
				name, params, _ := strings.Cut(item, ";")
				name = strings.TrimSpace(name)
				iq := qValue(params)
				switch {
				case strings.EqualFold(name, enc):
					q, named = iq, true
				case name == "*":
					star = iq
				}
			}
		}
		if !named && star >= 0 {
			q = star
		}
		if q > bestQ {
			best, bestQ = enc, q
		}
	}
	return best
}

// qValue reads q=<value> from an Accept-Encoding item's parameters; 1
// without one, 0 when it is malformed.
func qValue(params string) float64 {
	for p := range strings.SplitSeq(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || q < 0 || q > 1 {
			return 0
		}
		return q
	}
	return 1
}
