package swarmcache

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KeySize is the size of the cache encryption key: AES-256.
const KeySize = 32

// keyHelp says how an operator creates a usable key.
const keyHelp = "create one with `openssl rand 32 | docker secret create ingress-cache-key -` " +
	"and mount it into the service (default path /run/secrets/ingress-cache-key)"

// LoadKey reads the cache key from the file path. The file
// holds exactly 32 raw bytes (what `openssl rand 32` writes), or those 32
// bytes encoded as 64 hex characters or as standard base64 (`openssl rand
// -hex 32`, `openssl rand -base64 32`), optionally followed by a newline.
func LoadKey(path string) ([]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("the key file name is empty: the swarm cache needs a 32-byte key file; %s", keyHelp)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file %s: cannot read the cache key (%w); %s", path, err, keyHelp)
	}
	key, err := ParseKey(data)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w; %s", path, err, keyHelp)
	}
	return key, nil
}

// ParseKey accepts 32 raw bytes, or 32 bytes in hex or standard base64 with
// surrounding whitespace. Raw input is recognised by its length (encodings
// are 44 or 64 bytes); 32 bytes that are all hex or base64 characters are
// refused, since they are an encoded shorter key (`openssl rand -hex 16`),
// which 32 random bytes are with a probability below 1e-18.
func ParseKey(data []byte) ([]byte, error) {
	if len(data) == KeySize {
		if isText(data) {
			return nil, errors.New("the key file holds 32 characters of text (an encoded 16- or 24-byte key?), want 32 random bytes")
		}
		return append([]byte(nil), data...), nil
	}
	text := strings.TrimSpace(string(data))
	switch {
	case len(data) == 0:
		return nil, errors.New("the key file is empty, want 32 bytes")
	case len(text) == 2*KeySize:
		if key, err := hex.DecodeString(text); err == nil {
			return key, nil
		}
	case len(text) == base64.StdEncoding.EncodedLen(KeySize):
		if key, err := base64.StdEncoding.DecodeString(text); err == nil && len(key) == KeySize {
			return key, nil
		}
	}
	return nil, fmt.Errorf("the key file holds %d bytes, want exactly 32 raw bytes (or 64 hex / 44 base64 characters encoding 32 bytes)", len(data))
}

// newAEAD returns AES-256-GCM for key.
func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("cache key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	return aead, nil
}

// isText reports whether data is made only of hex or base64 characters.
func isText(data []byte) bool {
	for _, c := range data {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=') {
			return false
		}
	}
	return true
}
