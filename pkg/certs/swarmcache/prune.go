package swarmcache

import (
	"context"
	"errors"
	"fmt"

	"github.com/docker/docker/api/types/swarm"
)

// Prune removes the cache configs of this namespace that no longer matter:
// every version of a key for which keep returns false, every version but the
// newest of a key that is kept, and configs that do not decrypt with this
// instance's key (they can never be read). keep receives autocert cache
// keys: "example.com" (ECDSA certificate), "example.com+rsa",
// "example.com+token" (TLS-ALPN-01), "<token>+http-01", "acme_account+key".
// It returns how many configs it removed.
func (s *Store) Prune(ctx context.Context, keep func(key string) bool) (int, error) {
	list, err := s.api.ConfigList(ctx, listFilter(s.ns, LabelEntry, "1"))
	if err != nil {
		return 0, fmt.Errorf("list swarm cache configs: %w", err)
	}
	newestFirst(list)
	byHash := map[string][]swarm.Config{}
	var order []string
	for _, c := range list {
		h := c.Spec.Labels[LabelKeyHash]
		if _, seen := byHash[h]; !seen {
			order = append(order, h)
		}
		byHash[h] = append(byHash[h], c)
	}
	var doomed []swarm.Config
	for _, h := range order {
		doomed = append(doomed, s.pruneKey(h, byHash[h], keep)...)
	}
	removed := 0
	var errs []error
	for _, c := range doomed {
		if err := ignoreNotFound(s.api.ConfigRemove(ctx, c.ID)); err != nil {
			errs = append(errs, fmt.Errorf("remove config %s: %w", c.Spec.Name, err))
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}

// pruneKey returns the versions of one key (newest first) to remove.
func (s *Store) pruneKey(hash string, versions []swarm.Config, keep func(string) bool) []swarm.Config {
	var doomed []swarm.Config
	kept := false
	for _, c := range versions {
		key, _, err := open(s.aead, hash, c.Spec.Data)
		switch {
		case err != nil:
			s.log.Warn().Str(fieldConfig, c.Spec.Name).Err(err).Msg("swarm cache: pruning a config that does not decrypt")
		case !kept && keep(key):
			kept = true
			continue
		}
		doomed = append(doomed, c)
	}
	return doomed
}
