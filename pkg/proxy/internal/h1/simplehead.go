package h1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/net/http/httpguts"
)

// readSimpleResponse parses the common response head without
// http.ReadResponse and its allocations (a textproto reader, a string per
// line, a transfer reader and a LimitReader per response): an HTTP/1.1
// final response to a request other than HEAD, whose head is already whole
// in the buffer, with exactly one Content-Length and nothing that changes
// how the body is framed (Transfer-Encoding, Trailer, 1xx, 204, 304). For
// anything else, or anything it is not sure of, it consumes nothing and
// reports false: http.ReadResponse then reads the response. On the
// responses it takes it agrees with http.ReadResponse field for field
// (FuzzSimpleResponse checks that). A read error before the first byte is
// returned as http.ReadResponse returns it (io.EOF as io.ErrUnexpectedEOF).
func readSimpleResponse(br *bufio.Reader, req *http.Request) (*http.Response, bool, error) {
	if req.Method == http.MethodHead || req.Method == http.MethodConnect {
		return nil, false, nil
	}
	if _, err := br.Peek(1); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, true, err
	}
	buf, _ := br.Peek(br.Buffered())
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		return nil, false, nil
	}
	head := buf[:end+2] // every line with its CRLF
	for i, c := range head {
		// textproto ends a line at a bare LF too, and keeps a bare CR:
		// leave such heads to it.
		if c == '\n' && (i == 0 || head[i-1] != '\r') || c == '\r' && (i+1 == len(head) || head[i+1] != '\n') {
			return nil, false, nil
		}
	}
	eol := bytes.Index(head, []byte("\r\n"))
	line := head[:eol]
	if len(line) < 12 || string(line[:9]) != "HTTP/1.1 " || len(line) > 12 && line[12] != ' ' {
		return nil, false, nil
	}
	code := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return nil, false, nil
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code == http.StatusNoContent || code == http.StatusNotModified {
		return nil, false, nil
	}

	s := string(head) // one allocation for the status and every field
	status, fields := s[9:eol], s[eol+2:]
	n := strings.Count(fields, "\r\n")
	values := make([]string, n) // one allocation for every value
	h := make(http.Header, n)
	for i := 0; fields != ""; i++ {
		line, rest, _ := strings.Cut(fields, "\r\n")
		fields = rest
		k, v, ok := strings.Cut(line, ":")
		if !ok || k == "" || !httpguts.ValidHeaderFieldName(k) {
			return nil, false, nil // also a leading space (a continuation line)
		}
		v = strings.Trim(v, " \t")
		if !validValue(v) {
			return nil, false, nil
		}
		k = textproto.CanonicalMIMEHeaderKey(k)
		switch k {
		case "Transfer-Encoding", "Trailer", "Pragma":
			return nil, false, nil // framing, or a header ReadResponse rewrites
		}
		values[i] = v
		if vv := h[k]; vv == nil {
			h[k] = values[i : i+1 : i+1]
		} else {
			h[k] = append(vv, v)
		}
	}
	cl := h["Content-Length"]
	if len(cl) != 1 || cl[0] == "" || len(cl[0]) > 18 || strings.Trim(cl[0], "0123456789") != "" {
		return nil, false, nil
	}
	length, err := strconv.ParseInt(cl[0], 10, 64)
	if err != nil {
		return nil, false, nil
	}
	closing := httpguts.HeaderValuesContainsToken(h["Connection"], "close")
	if closing {
		delete(h, "Connection") // as ReadResponse does
	}
	res := &http.Response{
		Status: status, StatusCode: code,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, ContentLength: length, Close: closing, Request: req,
		Body: http.NoBody,
	}
	if length > 0 {
		res.Body = &lengthBody{br: br, left: length}
	}
	_, _ = br.Discard(end + 4)
	return res, true, nil
}

// validValue reports a field value textproto accepts: no control
// characters but tab, no DEL.
func validValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// lengthBody is a body of a known length, read from the connection's
// buffer. As net/http's, it returns io.EOF with its last bytes and
// io.ErrUnexpectedEOF if the connection ends early. Close may run while a
// Read is blocked: h1.Body closes the connection first, which ends the read.
type lengthBody struct {
	br     *bufio.Reader
	left   int64
	closed atomic.Bool
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.br.Read(p)
	b.left -= int64(n)
	switch {
	case b.left == 0:
		return n, io.EOF
	case err == io.EOF:
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *lengthBody) Close() error {
	b.closed.Store(true)
	return nil
}
