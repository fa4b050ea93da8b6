package certs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
)

// ACME challenge types, the values of Config.ChallengeType.
const (
	ChallengeHTTP01    = "http-01"
	ChallengeTLSALPN01 = "tls-alpn-01"
)

// onlyChallenge removes from the ACME authorization resp carries (a JSON
// object with "identifier" and "challenges") every challenge whose type is
// not typ; any other response passes unchanged. autocert picks the first
// type it supports among those an authorization offers, so it answers typ
// on the first order, and never another type: after a failed validation its
// next order finds no challenge it may use, and the attempt fails.
func onlyChallenge(resp *http.Response, typ string) (*http.Response, error) {
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		return resp, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxGuardBody+1))
	if err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("read ACME response: %w", err)
	}
	if len(body) > maxGuardBody { // no authorization is that large
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}
		return resp, nil
	}
	resp.Body.Close()
	if filtered, ok := authzOnly(body, typ); ok {
		body = filtered
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// authzOnly returns authorization body without its challenges of another
// type than typ, and false when body is not an authorization or holds no
// other type.
func authzOnly(body []byte, typ string) ([]byte, bool) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil || obj["identifier"] == nil || obj["challenges"] == nil {
		return nil, false
	}
	var challenges []json.RawMessage
	if json.Unmarshal(obj["challenges"], &challenges) != nil {
		return nil, false
	}
	kept := []json.RawMessage{}
	for _, c := range challenges {
		var ch struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(c, &ch) == nil && ch.Type == typ {
			kept = append(kept, c)
		}
	}
	if len(kept) == len(challenges) {
		return nil, false
	}
	var err error
	if obj["challenges"], err = json.Marshal(kept); err != nil {
		return nil, false
	}
	out, err := json.Marshal(obj)
	return out, err == nil
}
