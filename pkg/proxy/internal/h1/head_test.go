package h1

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"
	"reflect"
	"testing"
)

// FuzzWriteHead: a head written by writeHead reads back exactly like the
// one Request.Write writes for the same request, and writeHead accepts
// nothing Request.Write refuses.
func FuzzWriteHead(f *testing.F) {
	f.Add("GET", "/a/b", "x=1&y=%2F", "app.test:8080", "X-Req", "v", "curl/8", true)
	f.Add("HEAD", "/", "", "10.0.0.1", "Accept", " text/html \r\n x", "", true)
	f.Add("GET", "/sp ace", "", "bad host", "Bad Name", "v", "", false)
	f.Add("POST", "/", "", "app.test", "X", "v", "", true)
	f.Fuzz(func(t *testing.T, method, path, query, host, key, value, ua string, hasUA bool) {
		req := &http.Request{
			Method: method, Host: host, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			URL:    &url.URL{Scheme: "http", Host: "192.0.2.1:80", Path: path, RawQuery: query},
			Header: http.Header{key: {value, value + "2"}, "X-Fixed": {"fixed"}},
		}
		if hasUA {
			req.Header["User-Agent"] = []string{ua}
		}
		var fast bytes.Buffer
		bw := bufio.NewWriter(&fast)
		if !writeHead(bw, req) {
			if fast.Len() > 0 || bw.Buffered() > 0 {
				t.Fatal("writeHead declined after writing")
			}
			return
		}
		_ = bw.Flush()
		var std bytes.Buffer
		if err := req.Write(&std); err != nil {
			t.Fatalf("writeHead wrote a request Request.Write refuses (%v):\n%q", err, fast.String())
		}
		got, gerr := http.ReadRequest(bufio.NewReader(&fast))
		want, werr := http.ReadRequest(bufio.NewReader(&std))
		if gerr != nil || werr != nil {
			if (gerr == nil) != (werr == nil) {
				t.Fatalf("only one head parses (%v, %v):\nwriteHead:     %q\nRequest.Write: %q", gerr, werr, fast.String(), std.String())
			}
			return
		}
		if got.Method != want.Method || got.RequestURI != want.RequestURI || got.Host != want.Host ||
			!reflect.DeepEqual(got.Header, want.Header) || got.ContentLength != want.ContentLength {
			t.Fatalf("heads differ:\nwriteHead:     %q\nRequest.Write: %q", fast.String(), std.String())
		}
	})
}
