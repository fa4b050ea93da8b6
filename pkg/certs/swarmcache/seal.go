package swarmcache

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// A sealed value, as stored in a config's data:
//
//	magic "sic1" | 12-byte random nonce | AES-256-GCM(plaintext, aad)
//	plaintext = uvarint(len(key)) | key | value
//	aad       = magic | sha256(key)
//
// The key's hash is also the config's key-hash label, so a value moved to
// another key's config fails authentication. The key itself travels inside
// the ciphertext so that Prune can learn which key a config holds.
const magic = "sic1"

// MaxValueSize is the largest sealed value a config may hold. Swarm refuses
// config data over 500 KiB on older engines (1000 KB on newer ones); the
// smaller limit keeps the cache portable.
const MaxValueSize = 500 * 1024

var errSealed = errors.New("sealed value is malformed or does not authenticate (wrong key or tampered)")

// keyHash is the full hex SHA-256 of an autocert cache key.
func keyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

func additionalData(hash string) []byte {
	return append([]byte(magic), hash...)
}

// seal encrypts value for key.
func seal(aead cipher.AEAD, key string, value []byte) ([]byte, error) {
	plain := binary.AppendUvarint(nil, uint64(len(key)))
	plain = append(plain, key...)
	plain = append(plain, value...)
	out := make([]byte, len(magic)+aead.NonceSize(), len(magic)+aead.NonceSize()+len(plain)+aead.Overhead())
	copy(out, magic)
	if _, err := rand.Read(out[len(magic):]); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	out = aead.Seal(out, out[len(magic):], plain, additionalData(keyHash(key)))
	if len(out) > MaxValueSize {
		return nil, fmt.Errorf("cache value for %q is %d bytes sealed, over the Swarm config limit of %d bytes", key, len(out), MaxValueSize)
	}
	return out, nil
}

// open decrypts data stored under the given key hash and returns the key and
// value it holds.
func open(aead cipher.AEAD, hash string, data []byte) (key string, value []byte, err error) {
	head := len(magic) + aead.NonceSize()
	if len(data) < head+aead.Overhead() || string(data[:len(magic)]) != magic {
		return "", nil, errSealed
	}
	plain, err := aead.Open(nil, data[len(magic):head], data[head:], additionalData(hash))
	if err != nil {
		return "", nil, errSealed
	}
	n, used := binary.Uvarint(plain)
	if used <= 0 || n > uint64(len(plain)-used) {
		return "", nil, errSealed
	}
	key = string(plain[used : used+int(n)])
	if keyHash(key) != hash {
		return "", nil, errSealed
	}
	return key, plain[used+int(n):], nil
}
