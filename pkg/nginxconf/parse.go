// Package nginxconf reads Nginx configuration syntax: directives with
// arguments, blocks, quoting, comments, and `include` (with glob patterns,
// relative to the including file) through a Loader. It knows the syntax,
// not what the directives mean: pkg/nginximport translates them.
package nginxconf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Directive is one directive: `name arg…;` or `name arg… { block }`.
type Directive struct {
	Name    string
	Args    []string     // quotes removed
	Quoted  []bool       // per argument: it was written in quotes
	Block   []*Directive // the directives of a block, in order
	IsBlock bool         // the directive has a block (possibly empty)
	File    string       // the file it was read from
	Line    int          // 1-based line of its name
}

// Pos is "file:line".
func (d *Directive) Pos() string { return fmt.Sprintf("%s:%d", d.File, d.Line) }

// String renders the directive's head as written (without its block), e.g.
// `proxy_pass http://app:8080`.
func (d *Directive) String() string { return formatHead(d) }

// formatHead writes the name and arguments, quoting what needs quotes.
func formatHead(d *Directive) string {
	var b strings.Builder
	b.WriteString(word(d.Name, false))
	for i, a := range d.Args {
		b.WriteByte(' ')
		b.WriteString(word(a, i < len(d.Quoted) && d.Quoted[i]))
	}
	return b.String()
}

func word(s string, quoted bool) string {
	if quoted || s == "" || strings.ContainsAny(s, " \t\n\r\f\v;{}#\"'\\") {
		return quote(s)
	}
	return s
}

func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`, "\r", `\r`)
	return `"` + r.Replace(s) + `"`
}

// Arg returns argument i, or "" when there is none.
func (d *Directive) Arg(i int) string {
	if i < len(d.Args) {
		return d.Args[i]
	}
	return ""
}

// Error is a syntax error, or a failed include, at a place in a file.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Loader reads the files a configuration names. Paths are as Parse computes
// them: an include's pattern joined to the directory of the including file
// when it is relative.
type Loader interface {
	ReadFile(name string) ([]byte, error)
	Glob(pattern string) ([]string, error) // the matching files, sorted
}

// OSLoader reads the local file system.
type OSLoader struct{}

func (OSLoader) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }

func (OSLoader) Glob(pattern string) ([]string, error) {
	m, err := filepath.Glob(pattern)
	slices.Sort(m)
	return m, err
}

// maxIncludeDepth bounds nested includes (and so include cycles).
const maxIncludeDepth = 16

// Parse reads the file name and every file it includes, and returns its
// top-level directives with each `include` replaced by the directives of the
// files it names (each keeping its own file and line). A glob that matches
// nothing includes nothing, as in Nginx; a plain path that cannot be read is
// an error at the include's line.
func Parse(name string, loader Loader) ([]*Directive, error) {
	if loader == nil {
		loader = OSLoader{}
	}
	p := &parser{loader: loader}
	return p.file(name, nil, 0)
}

// ParseBytes parses one file's text without following includes (they stay
// directives named "include").
func ParseBytes(file string, src []byte) ([]*Directive, error) {
	p := &parser{}
	return p.parse(file, string(src), 0)
}

type parser struct {
	loader Loader // nil: includes are kept as directives
}

func (p *parser) file(name string, from *Directive, depth int) ([]*Directive, error) {
	data, err := p.loader.ReadFile(name)
	if err != nil {
		if from != nil {
			return nil, &Error{File: from.File, Line: from.Line, Msg: fmt.Sprintf("include %s: %v", name, unwrapPath(err))}
		}
		return nil, err
	}
	return p.parse(name, string(data), depth)
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (p *parser) parse(file, src string, depth int) ([]*Directive, error) {
	lx := newLexer(file, src)
	ds, end, err := p.block(lx, depth)
	if err != nil {
		return nil, err
	}
	if end.kind == tokClose {
		return nil, lx.errorf(end.line, "unexpected }")
	}
	return ds, nil
}

// block reads directives up to the end of the file or a '}', which it
// returns as end.
func (p *parser) block(lx *lexer, depth int) (ds []*Directive, end token, err error) {
	for {
		t, err := lx.next()
		if err != nil {
			return nil, t, err
		}
		switch t.kind {
		case tokEOF, tokClose:
			return ds, t, nil
		case tokSemi:
			continue // an empty directive, as Nginx allows
		case tokOpen:
			return nil, t, lx.errorf(t.line, "unexpected {: a block needs a directive name before it")
		}
		d := &Directive{Name: t.text, File: lx.file, Line: t.line}
	args:
		for {
			a, err := lx.next()
			if err != nil {
				return nil, a, err
			}
			switch a.kind {
			case tokWord:
				d.Args = append(d.Args, a.text)
				d.Quoted = append(d.Quoted, a.quoted)
			case tokSemi:
				break args
			case tokOpen:
				if depth+1 > 64 {
					return nil, a, lx.errorf(a.line, "blocks nested too deep")
				}
				inner, end, err := p.block(lx, depth+1)
				if err != nil {
					return nil, end, err
				}
				if end.kind != tokClose {
					return nil, end, lx.errorf(d.Line, "block %q is not closed (missing })", d.Name)
				}
				d.Block, d.IsBlock = inner, true
				break args
			case tokClose:
				return nil, a, lx.errorf(d.Line, "directive %q is not terminated by ;", d.Name)
			case tokEOF:
				return nil, a, lx.errorf(d.Line, "directive %q is not terminated by ; (end of file)", d.Name)
			}
		}
		if d.Name == "include" && !d.IsBlock && p.loader != nil {
			inc, err := p.include(d, depth)
			if err != nil {
				return nil, t, err
			}
			ds = append(ds, inc...)
			continue
		}
		ds = append(ds, d)
	}
}

var globMeta = regexp.MustCompile(`[*?[]`)

func (p *parser) include(d *Directive, depth int) ([]*Directive, error) {
	if len(d.Args) != 1 {
		return nil, &Error{File: d.File, Line: d.Line, Msg: "include takes one file name or pattern"}
	}
	if depth >= maxIncludeDepth {
		return nil, &Error{File: d.File, Line: d.Line, Msg: fmt.Sprintf("includes nested deeper than %d (a cycle?)", maxIncludeDepth)}
	}
	pattern := d.Args[0]
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(filepath.Dir(d.File), pattern)
	}
	names := []string{pattern}
	if globMeta.MatchString(pattern) {
		var err error
		names, err = p.loader.Glob(pattern)
		if err != nil {
			return nil, &Error{File: d.File, Line: d.Line, Msg: fmt.Sprintf("include %s: %v", pattern, err)}
		}
	}
	var out []*Directive
	for _, n := range names {
		ds, err := p.file(n, d, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, ds...)
	}
	return out, nil
}

// Walk calls fn for every directive of ds, depth first, with the chain of
// enclosing blocks (outermost first). fn returning false skips the block of
// that directive.
func Walk(ds []*Directive, fn func(d *Directive, parents []*Directive) bool) {
	var walk func(ds, parents []*Directive)
	walk = func(ds, parents []*Directive) {
		for _, d := range ds {
			if fn(d, parents) && d.IsBlock {
				walk(d.Block, append(parents, d))
			}
		}
	}
	walk(ds, nil)
}

// Variables lists the variable names a value refers to, in order, as
// written: "$host" and "${host}" are both "host"; "$1" is "1".
func Variables(v string) []string {
	var out []string
	for i := 0; i < len(v); i++ {
		if v[i] != '$' || i+1 >= len(v) {
			continue
		}
		if v[i+1] == '{' {
			if end := strings.IndexByte(v[i:], '}'); end > 2 {
				out = append(out, v[i+2:i+end])
				i += end
			}
			continue
		}
		j := i + 1
		for j < len(v) && (v[j] == '_' || 'a' <= v[j] && v[j] <= 'z' || 'A' <= v[j] && v[j] <= 'Z' || '0' <= v[j] && v[j] <= '9') {
			j++
		}
		if j > i+1 {
			out = append(out, v[i+1:j])
		}
		i = j - 1
	}
	return out
}

// Format writes directives back as configuration text, one per line,
// blocks indented; Parse of the result gives the same directives.
func Format(ds []*Directive) string {
	var b strings.Builder
	var write func(ds []*Directive, indent string)
	write = func(ds []*Directive, indent string) {
		for _, d := range ds {
			b.WriteString(indent)
			b.WriteString(formatHead(d))
			if d.IsBlock {
				b.WriteString(" {\n")
				write(d.Block, indent+"    ")
				b.WriteString(indent + "}\n")
			} else {
				b.WriteString(";\n")
			}
		}
	}
	write(ds, "")
	return b.String()
}
