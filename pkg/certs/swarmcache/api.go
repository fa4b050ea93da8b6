// Package swarmcache keeps autocert's cache and a cross-instance issuance lock
// in Swarm configs, so that every instance of a global ingress service shares
// one ACME state through the Raft store every Swarm already has.
//
//   - Store (an autocert.Cache): one config per entry version, named
//     ingress-cache-<sha256(key)[:24]>-<random> and labelled with the full
//     hash and the namespace. Configs are immutable: Put creates the new
//     version before it removes the older ones, and Get reads the newest
//     version (highest Raft index) that decrypts, so a reader always finds a
//     whole value. Challenge tokens go through it too, so any instance answers
//     a challenge another one started.
//   - Every value is sealed with AES-256-GCM under the 32-byte key read from
//     the key file (a Swarm secret); no config holds a certificate
//     or private key in the clear. New checks the key against the namespace's
//     key-check config, so an instance with another key fails at start.
//   - Locker (a certs.Locker): a config whose creation is the lock, with an
//     expiry its holder renews; see Locker.
//   - Prune removes what no route needs any more.
//
// Operators: `openssl rand 32 | docker secret create ingress-cache-key -`,
// then give the service that secret (mounted at
// /run/secrets/ingress-cache-key, the default key file).
package swarmcache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"maps"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
)

// API is the part of the Docker client this package uses; *client.Client
// satisfies it.
type API interface {
	ConfigCreate(ctx context.Context, spec swarm.ConfigSpec) (swarm.ConfigCreateResponse, error)
	ConfigList(ctx context.Context, options swarm.ConfigListOptions) ([]swarm.Config, error)
	ConfigInspectWithRaw(ctx context.Context, id string) (swarm.Config, []byte, error)
	ConfigUpdate(ctx context.Context, id string, version swarm.Version, spec swarm.ConfigSpec) error
	ConfigRemove(ctx context.Context, id string) error
}

// Labels on the configs this package creates.
const (
	LabelNamespace = "swarm-ingress.cache.namespace" // every config: the Namespace
	LabelEntry     = "swarm-ingress.cache"           // cache entries: "1"
	LabelKeyHash   = "swarm-ingress.cache.key-hash"  // cache entries: hex sha256 of the autocert key
	LabelCheck     = "swarm-ingress.cache.key-check" // the namespace's key-check config: "1"
	LabelLock      = "swarm-ingress.lock"            // locks: "1"
	LabelHolder    = "swarm-ingress.lock.holder"     // locks: holder id
	LabelExpires   = "swarm-ingress.lock.expires"    // locks: RFC 3339 expiry, renewed while held
)

// DefaultNamespace separates unrelated users of one Swarm (tests, stacks).
const DefaultNamespace = "default"

// Name prefixes; config names are at most 64 characters.
const (
	entryPrefix = "ingress-cache-"
	checkPrefix = "ingress-cachekey-"
	lockPrefix  = "ingress-lock-"
	shortHash   = 24
)

// labelsFor returns base plus the namespace label and extra.
func labelsFor(base map[string]string, namespace string, extra map[string]string) map[string]string {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, extra)
	out[LabelNamespace] = namespace
	return out
}

// listFilter selects configs of namespace carrying every label in kv (pairs).
func listFilter(namespace string, kv ...string) swarm.ConfigListOptions {
	args := filters.NewArgs(filters.Arg("label", LabelNamespace+"="+namespace))
	for i := 0; i+1 < len(kv); i += 2 {
		args.Add("label", kv[i]+"="+kv[i+1])
	}
	return swarm.ConfigListOptions{Filters: args}
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// ignoreNotFound drops "no such config": removing what is already gone is success.
func ignoreNotFound(err error) error {
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	return err
}
