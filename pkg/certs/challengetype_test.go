package certs

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// authzJSON is an authorization as Pebble returns it, offering every type.
const authzJSON = `{"status":"pending","identifier":{"type":"dns","value":"a.example.test"},` +
	`"challenges":[{"type":"tls-alpn-01","url":"https://ca/c/1","token":"t1","status":"pending"},` +
	`{"type":"http-01","url":"https://ca/c/2","token":"t2","status":"pending"},` +
	`{"type":"dns-01","url":"https://ca/c/3","token":"t3","status":"pending"}],` +
	`"expires":"2026-12-10T00:00:00Z"}`

// TestOnlyChallenge: with a challenge type set, the guard hands the ACME
// client authorizations that offer that type only, everything else of the
// authorization kept; every other response, and every response without a
// type set, passes byte for byte.
func TestOnlyChallenge(t *testing.T) {
	big := `{"identifier":{},"challenges":[{"type":"http-01"}],"pad":"` + strings.Repeat("x", maxGuardBody) + `"}`
	ca := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ctype := authzJSON, "application/json; charset=utf-8"
		switch r.URL.Path {
		case "/order":
			body = `{"status":"pending","identifiers":[{"type":"dns","value":"a.example.test"}],"authorizations":["https://ca/a/1"]}`
		case "/cert":
			body, ctype = authzJSON, "application/pem-certificate-chain"
		case "/big":
			body = big
		case "/only-dns":
			body = `{"identifier":{"type":"dns","value":"a.example.test"},"challenges":[{"type":"dns-01","url":"u"}]}`
		}
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Replay-Nonce", "nonce-1")
		io.WriteString(w, body)
	}))
	t.Cleanup(ca.Close)
	allowAll := func([]string) error { return nil }

	type challenge struct {
		Type  string `json:"type"`
		URL   string `json:"url"`
		Token string `json:"token"`
	}
	get := func(t *testing.T, typ, path string) (*http.Response, []byte) {
		t.Helper()
		c := &http.Client{Transport: &guard{next: http.DefaultTransport, allow: allowAll, challenge: typ}}
		resp, err := c.Post(ca.URL+path, "application/jose+json", strings.NewReader(`{"protected":"e30","payload":"","signature":"c2ln"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ContentLength >= 0 && resp.ContentLength != int64(len(body)) {
			t.Errorf("Content-Length %d, body %d bytes", resp.ContentLength, len(body))
		}
		if resp.Header.Get("Replay-Nonce") != "nonce-1" {
			t.Error("the response lost its Replay-Nonce header")
		}
		return resp, body
	}

	for _, typ := range []string{ChallengeHTTP01, ChallengeTLSALPN01} {
		t.Run(typ, func(t *testing.T) {
			_, body := get(t, typ, "/authz")
			var got, want struct {
				Status     string          `json:"status"`
				Identifier json.RawMessage `json:"identifier"`
				Expires    string          `json:"expires"`
				Challenges []challenge     `json:"challenges"`
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("filtered authorization is not JSON: %v: %s", err, body)
			}
			if err := json.Unmarshal([]byte(authzJSON), &want); err != nil {
				t.Fatal(err)
			}
			want.Challenges = slices.DeleteFunc(want.Challenges, func(c challenge) bool { return c.Type != typ })
			if len(want.Challenges) != 1 {
				t.Fatalf("fixture has %d %s challenges", len(want.Challenges), typ)
			}
			if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
				t.Errorf("authorization\n got %s\nwant %s", g, w)
			}
		})
	}
	t.Run("no type offered", func(t *testing.T) {
		_, body := get(t, ChallengeHTTP01, "/only-dns")
		var got struct {
			Challenges []challenge `json:"challenges"`
		}
		if err := json.Unmarshal(body, &got); err != nil || got.Challenges == nil || len(got.Challenges) != 0 {
			t.Errorf("authorization %s (%v), want an empty challenges list", body, err)
		}
	})
	passes := []struct{ name, typ, path, want string }{
		{name: "every type when unset", typ: "", path: "/authz", want: authzJSON},
		{name: "order", typ: ChallengeHTTP01, path: "/order"},
		{name: "not JSON", typ: ChallengeHTTP01, path: "/cert", want: authzJSON},
		{name: "over the size bound", typ: ChallengeTLSALPN01, path: "/big", want: big},
	}
	for _, tc := range passes {
		t.Run(tc.name, func(t *testing.T) {
			_, body := get(t, tc.typ, tc.path)
			if tc.want != "" && string(body) != tc.want {
				t.Errorf("body changed: got %.200s", body)
			}
			if tc.path == "/order" && !strings.Contains(string(body), `"authorizations":["https://ca/a/1"]`) {
				t.Errorf("order changed: %s", body)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// FuzzAuthzOnly: authzOnly never panics, and what it returns is JSON whose
// challenges are all of the type asked for.
func FuzzAuthzOnly(f *testing.F) {
	f.Add(authzJSON, ChallengeHTTP01)
	f.Add(`{"identifier":1,"challenges":[1,{"type":"x"}]}`, "x")
	f.Add(`not json`, ChallengeTLSALPN01)
	f.Fuzz(func(t *testing.T, body, typ string) {
		out, ok := authzOnly([]byte(body), typ)
		if !ok {
			return
		}
		var got struct {
			Challenges []struct {
				Type string `json:"type"`
			} `json:"challenges"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("authzOnly returned invalid JSON %q: %v", out, err)
		}
		for _, c := range got.Challenges {
			if c.Type != typ {
				t.Fatalf("challenge of type %q kept, want only %q", c.Type, typ)
			}
		}
	})
}
