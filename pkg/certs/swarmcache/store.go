package swarmcache

import (
	"cmp"
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/swarm"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/acme/autocert"
)

// Log field names.
const (
	fieldConfig = "config"
	fieldKey    = "cache_key"
	fieldLock   = "lock"
	fieldHolder = "holder"
)

// Config configures a Store.
type Config struct {
	Client    API               // required: the Docker client of a Swarm manager
	KeyFile   string            // required: file of the 32-byte key (see LoadKey)
	Namespace string            // separates unrelated caches in one Swarm; empty: DefaultNamespace
	Labels    map[string]string // optional extra labels on every config created
	Logger    zerolog.Logger    // default disabled

	PruneAfter time.Duration // Prune spares configs younger than this; zero: DefaultPruneAfter
}

// Store is an autocert.Cache on Swarm configs, one config per entry version.
type Store struct {
	api    API
	aead   cipher.AEAD
	ns     string
	labels map[string]string
	log    zerolog.Logger

	pruneAfter time.Duration
}

var _ autocert.Cache = (*Store)(nil)

// New loads the key and checks it against the namespace's key-check config
// (creating it on first use), so that an instance started with a different
// key than the others fails here, at start, with an error naming the key
// file.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Client == nil {
		return nil, errors.New("swarm cache: no Docker client")
	}
	key, err := LoadKey(cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	s := &Store{
		api:    cfg.Client,
		aead:   aead,
		ns:     cmp.Or(cfg.Namespace, DefaultNamespace),
		labels: maps.Clone(cfg.Labels),
		log:    cfg.Logger,

		pruneAfter: cmp.Or(cfg.PruneAfter, DefaultPruneAfter),
	}
	if err := s.checkKey(ctx, cfg.KeyFile); err != nil {
		return nil, err
	}
	return s, nil
}

// Get returns the newest version of key that decrypts, or autocert.ErrCacheMiss.
// A version that does not decrypt is logged and skipped.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	hash := keyHash(key)
	versions, err := s.versions(ctx, hash)
	if err != nil {
		return nil, err
	}
	for _, c := range versions {
		_, value, err := open(s.aead, hash, c.Spec.Data)
		if err != nil {
			s.log.Warn().Str(fieldConfig, c.Spec.Name).Str(fieldKey, key).Err(err).
				Msg("swarm cache entry does not decrypt; treated as missing")
			continue
		}
		return value, nil
	}
	return nil, autocert.ErrCacheMiss
}

// Put stores a new version of key, then removes the older versions. A failure
// to remove an older version is logged, not returned: the new value is
// stored and wins, and Prune removes what is left.
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	sealed, err := seal(s.aead, key, data)
	if err != nil {
		return err
	}
	hash := keyHash(key)
	spec := swarm.ConfigSpec{
		Annotations: swarm.Annotations{
			Name:   entryPrefix + hash[:shortHash] + "-" + randomHex(6),
			Labels: labelsFor(map[string]string{LabelEntry: "1", LabelKeyHash: hash}, s.ns, s.labels),
		},
		Data: sealed,
	}
	created, err := s.api.ConfigCreate(ctx, spec)
	if err != nil {
		return fmt.Errorf("create config %s: %w", spec.Name, err)
	}
	versions, err := s.versions(ctx, hash)
	if err != nil {
		s.log.Warn().Str(fieldKey, key).Err(err).Msg("swarm cache: older versions not removed")
		return nil
	}
	mine := slices.IndexFunc(versions, func(c swarm.Config) bool { return c.ID == created.ID })
	if mine < 0 {
		return nil // a newer Put already replaced this version
	}
	for _, c := range versions[mine+1:] {
		if err := ignoreNotFound(s.api.ConfigRemove(ctx, c.ID)); err != nil {
			s.log.Warn().Str(fieldConfig, c.Spec.Name).Str(fieldKey, key).Err(err).
				Msg("swarm cache: older version not removed")
		}
	}
	return nil
}

// Delete removes every version of key.
func (s *Store) Delete(ctx context.Context, key string) error {
	versions, err := s.versions(ctx, keyHash(key))
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range versions {
		if err := ignoreNotFound(s.api.ConfigRemove(ctx, c.ID)); err != nil {
			errs = append(errs, fmt.Errorf("remove config %s: %w", c.Spec.Name, err))
		}
	}
	return errors.Join(errs...)
}

// versions lists the configs holding key hash, newest first.
func (s *Store) versions(ctx context.Context, hash string) ([]swarm.Config, error) {
	list, err := s.api.ConfigList(ctx, listFilter(s.ns, LabelEntry, "1", LabelKeyHash, hash))
	if err != nil {
		return nil, fmt.Errorf("list swarm cache configs: %w", err)
	}
	newestFirst(list)
	return list, nil
}

// newestFirst orders configs by Raft index (the order Swarm created them in,
// cluster-wide), newest first; the name breaks ties deterministically.
func newestFirst(list []swarm.Config) {
	slices.SortFunc(list, func(a, b swarm.Config) int {
		return cmp.Or(cmp.Compare(b.Version.Index, a.Version.Index), cmp.Compare(a.Spec.Name, b.Spec.Name))
	})
}

// isConflict reports a create refused because the name exists.
func isConflict(err error) bool {
	return cerrdefs.IsConflict(err) || cerrdefs.IsAlreadyExists(err)
}
