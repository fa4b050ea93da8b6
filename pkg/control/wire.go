package control

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// The channel carries frames: a 4-byte big-endian length, then that many
// bytes of JSON. The edge sends a hello, then one ack per update; the
// controller sends updates, the first of them full.

// maxFrame bounds one frame: a table of thousands of routes and hundreds of
// certificates fits with room to spare.
const maxFrame = 64 << 20

// hello is the edge's first frame: its name for the controller's logs.
type hello struct {
	Edge string `json:"edge"`
}

// update is one controller frame. Full says it carries the controller's
// whole state (the first frame of a session); otherwise it carries changes.
type update struct {
	Seq        uint64      `json:"seq"` // per session, from 1
	Controller string      `json:"controller,omitempty"`
	Full       bool        `json:"full,omitempty"`
	Table      *Table      `json:"table,omitempty"`      // nil: unchanged
	Certs      []Cert      `json:"certs,omitempty"`      // added or replaced
	Challenges []Challenge `json:"challenges,omitempty"` // added, or removed when Data is nil
}

// ack confirms that the edge applied every update up to Seq.
type ack struct {
	Seq uint64 `json:"seq"`
}

// Table is a route table as data, with the version it was read at (see
// doc.go for the rule that orders versions).
type Table struct {
	Version int64          `json:"version"` // Unix nanoseconds of the Docker read the table comes from
	Routes  []*route.Route `json:"routes"`
	Errors  []route.Error  `json:"errors"`
	// Partial: the controller has not read Docker yet and the table holds
	// the routes file only (route.Table.Partial).
	Partial bool `json:"partial,omitempty"`
}

// NewTable captures t as data with version v.
func NewTable(t *route.Table, v int64) *Table {
	return &Table{Version: v, Routes: t.Routes, Errors: t.Errors, Partial: t.Partial}
}

// Build rebuilds the route table. The errors are the controller's, conflicts
// included, exactly as it reported them.
func (t *Table) Build() *route.Table {
	rt := route.New(route.Snapshot{
		Generation: uint64(t.Version),
		UpdatedAt:  time.Unix(0, t.Version),
		Routes:     t.Routes,
		Partial:    t.Partial,
	})
	rt.Errors = append([]route.Error(nil), t.Errors...)
	return rt
}

// Cert is one certificate an edge serves: its private key and chain as PEM
// blocks, the way autocert caches them, for every name in Names.
type Cert struct {
	Host      string    `json:"host"` // the name it was obtained for; "*.example.com" for a wildcard
	PEM       []byte    `json:"pem"`
	NotBefore time.Time `json:"not_before"` // of the leaf: the newer certificate of a host wins
}

// Challenge is a pending ACME challenge answer under autocert's cache key:
// "<token>+http-01" holds an HTTP-01 key authorization, "<host>+token" a
// TLS-ALPN-01 certificate and key in PEM.
type Challenge struct {
	Key  string `json:"key"`
	Data []byte `json:"data"` // nil: the challenge is over
}

// writeFrame sends v as one frame.
func writeFrame(w io.Writer, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode frame: %w", err)
	}
	if len(body) > maxFrame {
		return fmt.Errorf("frame of %d bytes exceeds %d", len(body), maxFrame)
	}
	buf := make([]byte, 4, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	if _, err := w.Write(append(buf, body...)); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	return nil
}

var errFrameSize = errors.New("frame too large")

// readFrame reads one frame into v.
func readFrame(r io.Reader, v any) error {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(head[:])
	if n > maxFrame {
		return fmt.Errorf("%w: %d bytes", errFrameSize, n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return fmt.Errorf("read frame: %w", err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode frame: %w", err)
	}
	return nil
}
