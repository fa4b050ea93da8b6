package swarmcache

import (
	"context"
	"fmt"

	"github.com/docker/docker/api/types/swarm"
)

// checkKeyName is the cache key sealed in the key-check config. It is not an
// autocert key (those never contain a NUL byte).
const checkKeyName = "\x00swarm-ingress key check"

// checkKey proves that this instance's key is the namespace's key: the first
// instance seals a key-check config (its name derives from the namespace, so
// only one create can succeed); every later instance must be able to open it.
func (s *Store) checkKey(ctx context.Context, keyFile string) error {
	for range 2 {
		list, err := s.api.ConfigList(ctx, listFilter(s.ns, LabelCheck, "1"))
		if err != nil {
			return fmt.Errorf("swarm cache: list key-check config: %w", err)
		}
		if len(list) > 0 {
			return s.verifyCheck(list, keyFile)
		}
		sealed, err := seal(s.aead, checkKeyName, []byte(randomHex(16)))
		if err != nil {
			return err
		}
		spec := swarm.ConfigSpec{
			Annotations: swarm.Annotations{
				Name:   checkPrefix + keyHash(s.ns)[:shortHash],
				Labels: labelsFor(map[string]string{LabelCheck: "1"}, s.ns, s.labels),
			},
			Data: sealed,
		}
		_, err = s.api.ConfigCreate(ctx, spec)
		if err == nil {
			s.log.Info().Str(fieldConfig, spec.Name).Msg("swarm cache: key-check config created")
			return nil
		}
		if !isConflict(err) {
			return fmt.Errorf("swarm cache: create key-check config %s: %w", spec.Name, err)
		}
		// Another instance created it first: read and verify theirs.
	}
	return fmt.Errorf("swarm cache: key-check config of namespace %q keeps disappearing", s.ns)
}

func (s *Store) verifyCheck(list []swarm.Config, keyFile string) error {
	hash := keyHash(checkKeyName)
	for _, c := range list {
		if _, _, err := open(s.aead, hash, c.Spec.Data); err == nil {
			return nil
		}
	}
	return fmt.Errorf("key file %s: this key is not the key the swarm cache (namespace %q) was created with: "+
		"config %s does not decrypt with it; give every ingress instance the same secret, "+
		"or, to start over with a new key, remove the old cache: "+
		"docker config rm $(docker config ls -q --filter label=%s=%s)",
		keyFile, s.ns, list[0].Spec.Name, LabelNamespace, s.ns)
}
