package h1

import (
	"bufio"
	"net/http"
	"net/textproto"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// writeHead writes the head of a GET or HEAD request without a body, the
// common case, as Request.Write would but without its allocations. It
// reports false, having written nothing, for any request it does not
// handle that way; writeRequest then uses Request.Write.
func writeHead(bw *bufio.Writer, req *http.Request) bool {
	if req.Method != http.MethodGet && req.Method != http.MethodHead ||
		req.Body != nil && req.Body != http.NoBody || req.ContentLength != 0 ||
		len(req.TransferEncoding) > 0 || req.Trailer != nil || req.Close {
		return false
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	uri := req.URL.RequestURI()
	if !plainASCII(host) || strings.IndexByte(host, '%') >= 0 || !httpguts.ValidHostHeader(host) || !plainASCII(uri) {
		return false // punycode, zones, invalid hosts: Request.Write decides
	}
	ua, hasUA := req.Header["User-Agent"]
	bw.WriteString(req.Method)
	bw.WriteByte(' ')
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	switch {
	case !hasUA:
		bw.WriteString("User-Agent: Go-http-client/1.1\r\n")
	case len(ua) > 0 && ua[0] != "":
		writeField(bw, "User-Agent", ua[0])
	}
	for k, vv := range req.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			continue // as Request.Write: dropped
		}
		for _, v := range vv {
			writeField(bw, k, v)
		}
	}
	bw.WriteString("\r\n")
	return true
}

var newlineToSpace = strings.NewReplacer("\n", " ", "\r", " ")

// writeField writes one header line, with line breaks in the value made
// spaces and the value trimmed, as Request.Write does.
func writeField(bw *bufio.Writer, k, v string) {
	if strings.ContainsAny(v, "\r\n") {
		v = newlineToSpace.Replace(v)
	}
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(textproto.TrimString(v))
	bw.WriteString("\r\n")
}

// plainASCII reports whether s is printable ASCII without spaces.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
