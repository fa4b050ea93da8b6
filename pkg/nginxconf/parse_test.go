package nginxconf

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// tree renders directives compactly for comparisons: name(args){...}.
func tree(ds []*Directive) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.Name)
		b.WriteString("(" + strings.Join(d.Args, "|") + ")")
		if d.IsBlock {
			b.WriteString("{" + tree(d.Block) + "}")
		}
		b.WriteString(";")
	}
	return b.String()
}

func TestParseSyntax(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"directives and blocks", "user nginx;\nhttp { server { listen 80; } }",
			"user(nginx);http(){server(){listen(80);};};"},
		{"comments", "# top\nworker_processes 1; # trailing\n#last", "worker_processes(1);"},
		{"hash inside a word is not a comment", "add_header X a#b;", "add_header(X|a#b);"},
		{"double quotes keep spaces and specials", `add_header X "a b; {c} #d";`, "add_header(X|a b; {c} #d);"},
		{"single quotes", `log_format main '$remote_addr - "$request"';`, `log_format(main|$remote_addr - "$request");`},
		{"escapes in quotes", `return 200 "a\"b\\c\n";`, "return(200|a\"b\\c\n);"},
		{"regex escapes kept", `location ~ "\.php$" { }`, `location(~|\.php$){};`},
		{"bare regex", `rewrite ^/old/(.*)$ /new/$1 permanent;`, `rewrite(^/old/(.*)$|/new/$1|permanent);`},
		{"braced variable in a bare word", `return 301 https://${host}x$request_uri;`, `return(301|https://${host}x$request_uri);`},
		{"empty directives", ";; a;;", "a();"},
		{"empty block", "events {}", "events(){};"},
		{"multi-line quote", "add_header X \"a\nb\";", "add_header(X|a\nb);"},
		{"map block", "map $http_upgrade $connection_upgrade { default upgrade; '' close; }",
			"map($http_upgrade|$connection_upgrade){default(upgrade);(close);};"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds, err := ParseBytes("t.conf", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if got := tree(ds); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestParseLines(t *testing.T) {
	src := "http {\n  # c\n  server {\n    listen \"80\"\n      ;\n    add_header X \"a\nb\";\n    root /x;\n  }\n}\n"
	ds, err := ParseBytes("n.conf", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	Walk(ds, func(d *Directive, parents []*Directive) bool {
		got = append(got, d.Pos()+" "+d.Name)
		return true
	})
	want := []string{"n.conf:1 http", "n.conf:3 server", "n.conf:4 listen", "n.conf:6 add_header", "n.conf:8 root"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"http {\n server {\n", "e.conf:2: block \"server\" is not closed (missing })"},
		{"a b\n", "e.conf:1: directive \"a\" is not terminated by ; (end of file)"},
		{"}\n", "e.conf:1: unexpected }"},
		{"\n{ }", "e.conf:2: unexpected {: a block needs a directive name before it"},
		{"server {\n listen 80\n}", "e.conf:2: directive \"listen\" is not terminated by ;"},
		{"x \"abc;\n\n", "e.conf:1: unterminated \"-quoted string"},
	}
	for _, tt := range tests {
		_, err := ParseBytes("e.conf", []byte(tt.src))
		var pe *Error
		if !errors.As(err, &pe) || err.Error() != tt.want {
			t.Errorf("%q: got error %v, want %s", tt.src, err, tt.want)
		}
	}
}

func TestIncludeGlobRelative(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("nginx.conf", "http {\n  include conf.d/*.conf;\n  include none/*.conf;\n  include snippets/common;\n}\n")
	write("conf.d/b.conf", "server { server_name b; }\n")
	write("conf.d/a.conf", "server { server_name a; include ../snippets/proxy; }\n")
	write("snippets/common", "gzip on;\n")
	write("snippets/proxy", "\n\nproxy_http_version 1.1;\n")

	ds, err := Parse(filepath.Join(dir, "nginx.conf"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "http(){server(){server_name(a);proxy_http_version(1.1);};server(){server_name(b);};gzip(on);};"
	if got := tree(ds); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	phv := ds[0].Block[0].Block[1]
	if phv.File != filepath.Join(dir, "snippets/proxy") || phv.Line != 3 {
		t.Errorf("included directive at %s, want snippets/proxy:3", phv.Pos())
	}

	write("bad.conf", "http {\n\n include missing.conf;\n}\n")
	_, err = Parse(filepath.Join(dir, "bad.conf"), nil)
	if err == nil || !strings.HasPrefix(err.Error(), filepath.Join(dir, "bad.conf")+":3: include ") {
		t.Errorf("missing include: got %v, want an error at bad.conf:3", err)
	}

	write("loop.conf", "include loop.conf;\n")
	_, err = Parse(filepath.Join(dir, "loop.conf"), nil)
	if err == nil || !strings.Contains(err.Error(), "a cycle?") {
		t.Errorf("include cycle: got %v", err)
	}

	write("syntax.conf", "include conf.d/a.conf;\ninclude broken;\n")
	write("broken", "x {\n")
	_, err = Parse(filepath.Join(dir, "syntax.conf"), nil)
	if err == nil || !strings.HasPrefix(err.Error(), filepath.Join(dir, "broken")+":1:") {
		t.Errorf("syntax error in an included file: got %v, want it at broken:1", err)
	}
}

func TestVariables(t *testing.T) {
	got := Variables("https://${host}x$request_uri?a=$arg_x&$1$ $")
	want := []string{"host", "request_uri", "arg_x", "1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// FuzzParse: the parser never panics, and what it parses survives Format
// and a second parse unchanged.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"http { server { listen 443 ssl; server_name a.example b.example; location / { proxy_pass http://app:8080; } } }",
		`add_header X "a b; {c}";`, `log_format m '$remote_addr "$request"';`,
		`return 301 https://${host}$request_uri;`, "rewrite ^/(.*)$ /x/$1 last;", "# c\n;;a;", "a \"\\\"\";",
		"location ~* \\.(png|jpg)$ { expires 1d; }", "map $a $b { default x; '' y; }", "x {", "}", "'unterminated",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		ds, err := ParseBytes("f.conf", []byte(src))
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		out := Format(ds)
		again, err := ParseBytes("f.conf", []byte(out))
		if err != nil {
			t.Fatalf("formatted text does not parse: %v\n%s", err, out)
		}
		if tree(ds) != tree(again) {
			t.Fatalf("round trip changed the directives:\n%s\n%s\nformatted:\n%s", tree(ds), tree(again), out)
		}
	})
}
