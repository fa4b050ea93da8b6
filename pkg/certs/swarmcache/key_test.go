package swarmcache

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xA5}, KeySize)
	newlines := bytes.Repeat([]byte{'\n'}, KeySize) // raw bytes that happen to be whitespace
	tests := []struct {
		name    string
		data    []byte
		want    []byte
		wantErr string
	}{
		{name: "raw", data: raw, want: raw},
		{name: "raw whitespace bytes", data: newlines, want: newlines},
		{name: "hex with newline", data: []byte(hex.EncodeToString(raw) + "\n"), want: raw},
		{name: "base64 with newline", data: []byte(base64.StdEncoding.EncodeToString(raw) + "\n"), want: raw},
		{name: "empty", data: nil, wantErr: "empty"},
		{name: "short", data: raw[:31], wantErr: "holds 31 bytes"},
		{name: "raw with newline", data: append(append([]byte{}, raw...), '\n'), wantErr: "holds 33 bytes"},
		{name: "bad hex", data: []byte(strings.Repeat("zz", KeySize)), wantErr: "holds 64 bytes"},
		{name: "hex of 16 bytes", data: []byte(hex.EncodeToString(raw[:16])), wantErr: "32 characters of text"},
		{name: "base64 of 24 bytes", data: []byte(base64.StdEncoding.EncodeToString(raw[:24])), wantErr: "32 characters of text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKey(tt.data)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseKey error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKey: %v", err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("ParseKey = %x, want %x", got, tt.want)
			}
		})
	}
}

func FuzzParseKey(f *testing.F) {
	f.Add([]byte("0123456789abcdef0123456789abcdef"))
	f.Add([]byte(strings.Repeat("ab", KeySize) + "\n"))
	f.Add([]byte(base64.StdEncoding.EncodeToString(make([]byte, KeySize))))
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := ParseKey(data)
		if err == nil && len(key) != KeySize {
			t.Fatalf("ParseKey accepted %q as a %d-byte key", data, len(key))
		}
	})
}

func TestLoadKeyErrorsNameTheFile(t *testing.T) {
	tests := []struct {
		name string
		path string
		want string
	}{
		{name: "missing file", path: filepath.Join(t.TempDir(), "nope"), want: "no such file"},
		{name: "wrong size", path: writeFile(t, []byte("too short")), want: "holds 9 bytes"},
		{name: "no path", path: "", want: "is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadKey(tt.path)
			if err == nil {
				t.Fatal("LoadKey succeeded")
			}
			for _, want := range []string{"key file", tt.want, "openssl rand 32"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

// sealer seals and opens with one random key.
type sealer struct {
	t    testing.TB
	aead cipher.AEAD
}

func newSealer(t testing.TB) sealer {
	key := make([]byte, KeySize)
	_, _ = rand.Read(key)
	aead, err := newAEAD(key)
	if err != nil {
		t.Fatal(err)
	}
	return sealer{t: t, aead: aead}
}

func (s sealer) seal(key string, value []byte) []byte {
	out, err := seal(s.aead, key, value)
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

func (s sealer) open(hash string, data []byte) (string, []byte, error) {
	return open(s.aead, hash, data)
}

func TestSealOpen(t *testing.T) {
	a, b := newSealer(t), newSealer(t)
	openA, openB, sealA := a.open, b.open, a.seal
	value := []byte("-----BEGIN EC PRIVATE KEY-----\nsecret\n")
	sealed := sealA("example.com", value)
	if bytes.Contains(sealed, []byte("BEGIN")) || bytes.Contains(sealed, []byte("example.com")) {
		t.Fatal("sealed value contains plaintext")
	}
	key, got, err := openA(keyHash("example.com"), sealed)
	if err != nil || key != "example.com" || !bytes.Equal(got, value) {
		t.Fatalf("open = %q, %q, %v; want the value back", key, got, err)
	}
	if again := sealA("example.com", value); bytes.Equal(again, sealed) {
		t.Fatal("two seals of one value are identical: nonce not random")
	}

	tampered := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 1
		return b
	}
	tests := []struct {
		name string
		open func(string, []byte) (string, []byte, error)
		hash string
		data []byte
	}{
		{name: "wrong key", open: openB, hash: keyHash("example.com"), data: sealed},
		{name: "moved to another key", open: openA, hash: keyHash("other.example"), data: sealed},
		{name: "magic flipped", open: openA, hash: keyHash("example.com"), data: tampered(0)},
		{name: "nonce flipped", open: openA, hash: keyHash("example.com"), data: tampered(len(magic) + 1)},
		{name: "ciphertext flipped", open: openA, hash: keyHash("example.com"), data: tampered(len(sealed) - 20)},
		{name: "tag flipped", open: openA, hash: keyHash("example.com"), data: tampered(len(sealed) - 1)},
		{name: "truncated", open: openA, hash: keyHash("example.com"), data: sealed[:20]},
		{name: "empty", open: openA, hash: keyHash("example.com"), data: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := tt.open(tt.hash, tt.data); !errors.Is(err, errSealed) {
				t.Fatalf("open error = %v, want errSealed", err)
			}
		})
	}
}

func TestSealRefusesOversize(t *testing.T) {
	aead, _ := newAEAD(make([]byte, KeySize))
	if _, err := seal(aead, "big", make([]byte, MaxValueSize)); err == nil || !strings.Contains(err.Error(), "Swarm config limit") {
		t.Fatalf("seal of %d bytes: error %v, want the size limit", MaxValueSize, err)
	}
	if _, err := seal(aead, "fits", make([]byte, MaxValueSize-64)); err != nil {
		t.Fatalf("seal just under the limit: %v", err)
	}
}

func FuzzOpen(f *testing.F) {
	aead, _ := newAEAD(make([]byte, KeySize))
	good, _ := seal(aead, "k", []byte("v"))
	f.Add(good)
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, data []byte) {
		key, _, err := open(aead, keyHash("k"), data)
		if err == nil && key != "k" {
			t.Fatalf("open returned key %q for hash of k", key)
		}
	})
}
