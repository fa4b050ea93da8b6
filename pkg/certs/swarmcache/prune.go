package swarmcache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

// DefaultPruneAfter is how young a config must be for Prune to spare it: two
// orders' worth of autocert's five-minute bound.
const DefaultPruneAfter = 10 * time.Minute

// Prune removes the cache configs of this namespace that no longer matter,
// and returns how many it removed:
//   - every version of a key but its newest readable one, at once (readers
//     only ever use the newest);
//   - configs older than Config.PruneAfter that are challenge tokens
//     ("<token>+http-01", "<host>+token": left behind by an order whose
//     instance died), that do not decrypt with this instance's key, or whose
//     key keep rejects.
//
// Younger configs are spared: an order on another instance may be using its
// tokens, and another instance's route table may be newer than the caller's.
// keep receives autocert cache keys ("example.com", "example.com+rsa",
// "acme_account+key"); KeepHosts builds it from a host policy. Concurrent
// Prunes on several instances are harmless.
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
	cutoff := time.Now().Add(-s.pruneAfter)
	for _, h := range order {
		doomed = append(doomed, s.pruneKey(h, byHash[h], keep, cutoff)...)
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
func (s *Store) pruneKey(hash string, versions []swarm.Config, keep func(string) bool, cutoff time.Time) []swarm.Config {
	var doomed []swarm.Config
	newest := true
	for _, c := range versions {
		key, _, err := open(s.aead, hash, c.Spec.Data)
		old := c.CreatedAt.Before(cutoff)
		switch {
		case err != nil:
			if !old {
				continue
			}
			s.log.Warn().Str(fieldConfig, c.Spec.Name).Err(err).Msg("swarm cache: pruning a config that does not decrypt")
		case !newest: // superseded by a readable newer version
		case !old:
			newest = false
			continue
		case isToken(key) || !keep(key):
			newest = false
		default:
			newest = false
			continue
		}
		doomed = append(doomed, c)
	}
	return doomed
}

// isToken reports whether key is an autocert challenge token entry.
func isToken(key string) bool {
	return strings.HasSuffix(key, "+http-01") || strings.HasSuffix(key, "+token")
}

// KeepHosts returns a Prune keep function for an autocert cache: the ACME
// account key is kept, and a certificate ("example.com", "example.com+rsa")
// while tlsHost (the host policy, e.g. route.Table.TLSHost) accepts its host.
func KeepHosts(tlsHost func(host string) bool) func(key string) bool {
	return func(key string) bool {
		switch {
		case key == "acme_account+key" || key == "acme_account.key":
			return true
		case isToken(key):
			return false
		}
		return tlsHost(strings.TrimSuffix(key, "+rsa"))
	}
}
