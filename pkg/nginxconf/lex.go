package nginxconf

import (
	"fmt"
	"strings"
)

// tokenKind is what a token is.
type tokenKind int

const (
	tokWord  tokenKind = iota // a bare or quoted word
	tokSemi                   // ;
	tokOpen                   // {
	tokClose                  // }
	tokEOF
)

// token is one lexical unit with the line it starts on.
type token struct {
	kind   tokenKind
	text   string // a word's value, quotes removed and escapes applied
	quoted bool   // the word was written in quotes
	line   int
}

// lexer splits Nginx configuration text into tokens the way Nginx reads it:
// whitespace separates words; '#' at the start of a word begins a comment to
// the end of the line; a word in single or double quotes may hold spaces,
// ';', '{', '}' and '#', and a backslash escapes the next character (\n,
// \r and \t are the control characters); a bare word ends at whitespace,
// ';', '{' or '}', except that "${" keeps the braces of a variable name
// inside the word ("${host}x").
type lexer struct {
	file string
	src  string
	pos  int
	line int
}

func newLexer(file, src string) *lexer { return &lexer{file: file, src: src, line: 1} }

func (l *lexer) errorf(line int, format string, args ...any) error {
	return &Error{File: l.file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// next returns the next token, or an error for an unterminated quote.
func (l *lexer) next() (token, error) {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == '\n':
			l.line++
			l.pos++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			l.pos++
		case c == '#':
			for l.pos < len(l.src) && l.src[l.pos] != '\n' {
				l.pos++
			}
		case c == ';':
			l.pos++
			return token{kind: tokSemi, line: l.line}, nil
		case c == '{':
			l.pos++
			return token{kind: tokOpen, line: l.line}, nil
		case c == '}':
			l.pos++
			return token{kind: tokClose, line: l.line}, nil
		case c == '"' || c == '\'':
			return l.quoted(c)
		default:
			return l.bare(), nil
		}
	}
	return token{kind: tokEOF, line: l.line}, nil
}

func (l *lexer) quoted(q byte) (token, error) {
	start := l.line
	l.pos++ // opening quote
	var b strings.Builder
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == q:
			l.pos++
			return token{kind: tokWord, text: b.String(), quoted: true, line: start}, nil
		case c == '\\' && l.pos+1 < len(l.src):
			n := l.src[l.pos+1]
			switch n {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case '"', '\'', '\\':
				b.WriteByte(n)
			default: // Nginx keeps the backslash before any other character (regexes: "\.")
				b.WriteByte('\\')
				b.WriteByte(n)
			}
			if n == '\n' {
				l.line++
			}
			l.pos += 2
		default:
			if c == '\n' {
				l.line++
			}
			b.WriteByte(c)
			l.pos++
		}
	}
	return token{}, l.errorf(start, "unterminated %c-quoted string", q)
}

func (l *lexer) bare() token {
	start := l.pos
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		if c == '$' && l.pos+1 < len(l.src) && l.src[l.pos+1] == '{' {
			if end := strings.IndexByte(l.src[l.pos:], '}'); end > 0 && !strings.ContainsAny(l.src[l.pos:l.pos+end], " \t\n;") {
				l.pos += end + 1
				continue
			}
		}
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == ';' || c == '{' || c == '}' {
			break
		}
		if c == '\\' && l.pos+1 < len(l.src) && l.src[l.pos+1] != '\n' {
			l.pos += 2 // an escaped character stays in the word ("\;")
			continue
		}
		l.pos++
	}
	return token{kind: tokWord, text: l.src[start:l.pos], line: l.line}
}
