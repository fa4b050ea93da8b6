package proxy

import (
	"net/http"
	"net/url"
)

// Routes are matched on one canonical form of the request path, and that
// form is what the upstream receives, so the route checks (auth, allow,
// limits) see the path the upstream will serve (docs/labels.md, "Paths").
//
// The canonical form of an escaped path:
//   - percent-escapes of unreserved characters (ALPHA DIGIT - . _ ~) are
//     decoded; every other escape is kept, its hex in upper case;
//   - a byte that may not stand unescaped in a path is escaped;
//   - "." and ".." segments are resolved (also when spelled %2e), as
//     RFC 3986 section 5.2.4 does: "/a/b/.." is "/a/";
//   - repeated slashes are merged; a trailing slash is kept.
//
// A path is refused when it holds a raw backslash, an escaped or raw control
// character (%00-%1F, %7F), an invalid escape, or does not start with "/".
// An escaped slash or backslash (%2F, %5C) stays escaped, a character of its
// segment, and is reported: the caller refuses it unless the route opts in.

// canonicalPath returns the canonical form of the escaped path p, whether it
// holds an escaped slash or backslash, and false if p is refused. When p is
// already canonical (the common case) it is returned as is, without
// allocating. An empty path is "/".
func canonicalPath(p string) (c string, slash, ok bool) {
	if p == "" {
		return "/", false, true
	}
	if p[0] != '/' {
		return "", false, false
	}
	canonical := true
	for i := 0; i < len(p) && canonical; i++ {
		switch b := p[i]; {
		case b == '/':
			canonical = !dotOrEmpty(p[i+1:])
		case b == '%':
			d, ok := escaped(p, i)
			if !ok {
				return "", false, false
			}
			slash = slash || d == '/' || d == '\\'
			canonical = keepEscaped(d) && isUpperHex(p[i+1]) && isUpperHex(p[i+2])
			i += 2
		default:
			canonical = pathByte(b)
		}
	}
	if canonical {
		return p, slash, true
	}
	return rebuildPath(p)
}

// dotOrEmpty reports whether the segment that s starts with (s runs from
// just after a slash) is empty, ".", or "..", and so not canonical. A final
// empty segment is a trailing slash, which is canonical.
func dotOrEmpty(s string) bool {
	switch {
	case s == "":
		return false
	case s[0] == '/':
		return true
	case s[0] != '.':
		return false
	case len(s) == 1 || s[1] == '/':
		return true
	}
	return s[1] == '.' && (len(s) == 2 || s[2] == '/')
}

// rebuildPath is canonicalPath's slow path: it builds the canonical form
// segment by segment.
func rebuildPath(p string) (string, bool, bool) {
	out := make([]byte, 0, len(p)+8)
	slash := false
	trailing := false
	for start := 1; start <= len(p); {
		end := start
		for end < len(p) && p[end] != '/' {
			end++
		}
		mark := len(out)
		out = append(out, '/')
		for i := start; i < end; i++ {
			b := p[i]
			switch {
			case b == '%':
				d, ok := escaped(p, i)
				if !ok {
					return "", false, false
				}
				i += 2
				if !keepEscaped(d) {
					out = append(out, d)
					continue
				}
				slash = slash || d == '/' || d == '\\'
				out = appendEscape(out, d)
			case b == '\\' || isControl(b):
				return "", false, false
			case pathByte(b):
				out = append(out, b)
			default:
				out = appendEscape(out, b)
			}
		}
		switch string(out[mark+1:]) {
		case "", ".":
			out = out[:mark]
		case "..":
			out = out[:mark]
			for len(out) > 0 && out[len(out)-1] != '/' {
				out = out[:len(out)-1]
			}
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			trailing = false
			start = end + 1
			continue
		}
		trailing = true // an empty or dot last segment leaves a directory
		start = end + 1
	}
	if trailing || len(out) == 0 {
		out = append(out, '/')
	}
	return string(out), slash, true
}

// escaped decodes the escape at p[i] ('%'). It reports false for an
// invalid escape or one of a control character.
func escaped(p string, i int) (byte, bool) {
	if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
		return 0, false
	}
	d := unhex(p[i+1])<<4 | unhex(p[i+2])
	return d, !isControl(d)
}

// keepEscaped reports whether the canonical form keeps byte d escaped:
// everything but the unreserved characters.
func keepEscaped(d byte) bool {
	return !('a' <= d && d <= 'z' || 'A' <= d && d <= 'Z' || '0' <= d && d <= '9' ||
		d == '-' || d == '.' || d == '_' || d == '~')
}

// pathByte reports whether b may stand unescaped in a canonical path
// segment: unreserved, sub-delims, ':' and '@' (RFC 3986 pchar).
func pathByte(b byte) bool {
	if !keepEscaped(b) {
		return true
	}
	switch b {
	case '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@':
		return true
	}
	return false
}

func isControl(b byte) bool { return b < 0x20 || b == 0x7f }

func isUpperHex(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

const upperHex = "0123456789ABCDEF"

func appendEscape(out []byte, b byte) []byte {
	return append(out, '%', upperHex[b>>4], upperHex[b&15])
}

// requestPath returns r's path as the client escaped it. url.URL keeps the
// client's spelling in RawPath only when it differs from the default
// escaping of Path, which EscapedPath then computes without allocating.
// (EscapedPath alone is not enough: it drops a RawPath that holds bytes
// such as '"', losing the difference between "%2F" and "/".)
func requestPath(u *url.URL) string {
	if u.RawPath != "" {
		return u.RawPath
	}
	return u.EscapedPath()
}

// setPath makes c, a canonical path, the path of u: RawPath is c and Path
// its decoded form, so that u.EscapedPath (and so the request line sent
// upstream) is exactly c.
func setPath(u *url.URL, c string) {
	p, err := url.PathUnescape(c)
	if err != nil { // not reached: c holds valid escapes only
		panic("proxy: canonical path does not unescape: " + err.Error())
	}
	u.Path, u.RawPath = p, c
}

// encodedSlashAllowed reports whether a request whose canonical path c
// holds an escaped slash or backslash may go to route rs: only when the
// route opts in (allow_encoded_slashes) and the path, read with those
// escapes as separators as many backends read it, is still matched to the
// same route.
func (st *state) encodedSlashAllowed(rs *routeState, r *http.Request, c string) bool {
	if !rs.route.AllowEncodedSlashes {
		return false
	}
	asSep := make([]byte, 0, len(c))
	for i := 0; i < len(c); i++ {
		if c[i] == '%' && (c[i+1:i+3] == "2F" || c[i+1:i+3] == "5C") {
			asSep = append(asSep, '/')
			i += 2
			continue
		}
		asSep = append(asSep, c[i])
	}
	other, _, ok := canonicalPath(string(asSep))
	return ok && st.routes[st.table.Match(r.Host, other)] == rs
}
