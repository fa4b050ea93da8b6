package route

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestRewriteView(t *testing.T) {
	r := &Route{Service: "s", Name: "default", Hosts: []string{"a.example.com"}, Path: "/",
		Return:                Return{Code: 301, URL: "https://b.example.com$request_uri"},
		CanonicalHost:         "a.example.com",
		Rewrites:              []Rewrite{{Regex: `^/old/(.*)$`, Replacement: "/new/$1", Code: 301}, {Regex: `^/a$`, Replacement: "/b", Last: true}},
		RequestHeaders:        []Header{{Name: "X-Real-Ip", Value: "$remote_addr"}},
		RequestHeadersAdd:     []Header{{Name: "X-Tag", Value: "t"}},
		RequestHeadersRemove:  []string{"Cookie"},
		ResponseHeadersRemove: []string{"Server"},
		Compress:              Compression{Encodings: []string{EncodingZstd, EncodingGzip}, Types: []string{"text/html"}, MinSize: 1000},
	}
	plain := &Route{Service: "s", Name: "plain", Hosts: []string{"b.example.com"}, Path: "/"}
	b, err := json.Marshal(New(Snapshot{Routes: []*Route{r, plain}}).View().Routes)
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]json.RawMessage
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"return":                  `"301 https://b.example.com$request_uri"`,
		"canonical_host":          `"a.example.com"`,
		"rewrites":                `[{"regex":"^/old/(.*)$","replacement":"/new/$1","status":301,"last":false},{"regex":"^/a$","replacement":"/b","status":0,"last":true}]`,
		"request_headers":         `[{"name":"X-Real-Ip","value":"$remote_addr"}]`,
		"request_headers_add":     `[{"name":"X-Tag","value":"t"}]`,
		"request_headers_remove":  `["Cookie"]`,
		"response_headers_remove": `["Server"]`,
		"compress":                `{"encodings":["zstd","gzip"],"types":["text/html"],"min_size":1000}`,
	}
	for k, v := range want {
		if string(got[0][k]) != v {
			t.Errorf("%s = %s, want %s", k, got[0][k], v)
		}
		if _, ok := got[1][k]; ok {
			t.Errorf("a route without %s lists it", k)
		}
	}
}

func TestTemplate(t *testing.T) {
	value := func(v Var) string {
		switch v {
		case VarHost:
			return "example.com"
		case VarRequestURI:
			return "/a?b=1"
		case VarCapture1:
			return "one"
		case VarCapture1 + 1:
			return "two"
		}
		return "?"
	}
	tests := []struct {
		in, want string
		captures int
		err      string
	}{
		{in: "https://$host$request_uri", want: "https://example.com/a?b=1"},
		{in: "${host}x", want: "example.comx"},
		{in: "$hostx", err: "unknown variable $hostx"},
		{in: "/$2/$1/$10", captures: 2, want: "/two/one/one0"},
		{in: "/$3", captures: 2, err: "has 2 capture group"},
		{in: "/$1", err: "only available in a rewrite"},
		{in: "cost $ 5 and $", want: "cost $ 5 and $"},
		{in: "${host", err: "without }"},
		{in: "", want: ""},
	}
	for _, tc := range tests {
		tp, err := ParseTemplate(tc.in, tc.captures > 0, tc.captures)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got := string(tp.Expand(nil, value)); got != tc.want {
			t.Errorf("%q expands to %q, want %q", tc.in, got, tc.want)
		}
	}
}
