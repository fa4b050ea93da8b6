package proxy

import (
	"path"
	"strings"
	"unicode/utf8"
)

// How common backends map the escaped path of a request to the resource
// they serve, modelled from their documented behaviour. The path tests use
// them to prove that every spelling a backend reads as inside a protected
// prefix reaches that prefix's route (or is refused).

// backendModel maps an escaped request path to what the backend routes on;
// ok is false when the backend refuses the path itself.
type backendModel struct {
	name       string
	mapPath    func(escaped string) (mapped string, ok bool)
	ignoreCase bool // routes match letters in either case
	keepsDots  bool // dot segments are not resolved
}

var backendModels = []backendModel{
	{name: "go net/http", mapPath: goServeMux},
	{name: "python http.server", mapPath: pythonHTTPServer},
	{name: "express", mapPath: expressRouter, ignoreCase: true, keepsDots: true},
	{name: "nginx", mapPath: nginxLocation},
}

// inside reports whether the model reads escaped as prefix or below it.
func (m backendModel) inside(escaped, prefix string) bool {
	p, ok := m.mapPath(escaped)
	if !ok {
		return false
	}
	if m.ignoreCase { // ASCII only, as JavaScript's case-insensitive RegExp
		p, prefix = lowerASCII(p), lowerASCII(prefix)
	}
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

func lowerASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

// insideAny names the first model that reads escaped as inside prefix.
// A model that keeps dot segments never receives a spelling that holds one:
// the ingress resolves them before it forwards (path.go), so that model
// reads only what is forwarded, which the tests check separately.
func insideAny(escaped, prefix string) (string, bool) {
	for _, m := range backendModels {
		if m.keepsDots && hasDotSegment(escaped) {
			continue
		}
		if m.inside(escaped, prefix) {
			return m.name, true
		}
	}
	return "", false
}

// hasDotSegment reports whether escaped has a "." or ".." segment, also
// when spelled with escapes.
func hasDotSegment(escaped string) bool {
	for seg := range strings.SplitSeq(escaped, "/") {
		if d, _ := percentDecode(seg, false); d == "." || d == ".." {
			return true
		}
	}
	return false
}

// percentDecode decodes every %XX; strict refuses an invalid escape, else
// it is kept as written (Python's unquote).
func percentDecode(s string, strict bool) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			if i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
				b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
				i += 2
				continue
			}
			if strict {
				return "", false
			}
		}
		b.WriteByte(s[i])
	}
	return b.String(), true
}

// cleanKeepSlash is path.Clean of a rooted p, keeping a trailing slash.
func cleanKeepSlash(p string) string {
	c := path.Clean("/" + p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// goServeMux: net/http decodes the whole path, %2F included, into
// URL.Path; ServeMux cleans it (path.Clean, trailing slash kept) and routes
// (or redirects to) the clean path; http.FileServer serves it.
func goServeMux(escaped string) (string, bool) {
	p, ok := percentDecode(escaped, true)
	if !ok {
		return "", false
	}
	return cleanKeepSlash(p), true
}

// pythonHTTPServer: SimpleHTTPRequestHandler.translate_path unquotes the
// path (invalid escapes kept), applies posixpath.normpath, then joins the
// words that are not empty, "." or "..".
func pythonHTTPServer(escaped string) (string, bool) {
	p, _ := percentDecode(escaped, false)
	var words []string
	for w := range strings.SplitSeq(path.Clean("/"+p), "/") {
		if w != "" && w != "." && w != ".." {
			words = append(words, w)
		}
	}
	out := "/" + strings.Join(words, "/")
	if strings.HasSuffix(p, "/") && out != "/" {
		out += "/"
	}
	return out, true
}

// expressRouter: decodeURIComponent of the path (an invalid escape or
// invalid UTF-8 is an error), matched case-insensitively with an optional
// trailing slash; slashes are not merged nor dots resolved.
func expressRouter(escaped string) (string, bool) {
	p, ok := percentDecode(escaped, true)
	if !ok || !utf8.ValidString(p) {
		return "", false
	}
	return p, true
}

// nginxLocation: nginx decodes the path, merges slashes (merge_slashes on)
// and resolves dot segments before matching locations; ".." above the root
// is refused.
func nginxLocation(escaped string) (string, bool) {
	p, ok := percentDecode(escaped, true)
	if !ok {
		return "", false
	}
	depth := 0
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "", ".":
		case "..":
			if depth--; depth < 0 {
				return "", false
			}
		default:
			depth++
		}
	}
	return cleanKeepSlash(p), true
}
