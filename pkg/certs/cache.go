package certs

import (
	"context"
	"errors"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/acme/autocert"
)

// loggingCache wraps the cache autocert uses: it logs the write errors that
// autocert ignores (a certificate it cannot store is ordered again after a
// restart; a challenge token it cannot store cannot be answered by another
// instance) and reports successful writes to stored. Challenge answers also
// go to challenges, when set.
type loggingCache struct {
	next       autocert.Cache
	log        zerolog.Logger
	stored     func(key string, data []byte)
	challenges Challenges
}

func (c *loggingCache) Get(ctx context.Context, key string) ([]byte, error) {
	data, err := c.next.Get(ctx, key)
	if err != nil && !errors.Is(err, autocert.ErrCacheMiss) {
		c.log.Error().Err(err).Str(fieldKey, key).Msg("read ACME cache")
	}
	return data, err
}

func (c *loggingCache) Put(ctx context.Context, key string, data []byte) error {
	if err := c.next.Put(ctx, key, data); err != nil {
		c.log.Error().Err(err).Str(fieldKey, key).Msg("write ACME cache")
		return err
	}
	c.stored(key, data)
	if c.challenges != nil && IsChallengeKey(key) {
		c.challenges.Put(ctx, key, data)
	}
	return nil
}

func (c *loggingCache) Delete(ctx context.Context, key string) error {
	if c.challenges != nil && IsChallengeKey(key) {
		c.challenges.Delete(key)
	}
	err := c.next.Delete(ctx, key)
	if err != nil {
		c.log.Error().Err(err).Str(fieldKey, key).Msg("delete from ACME cache")
	}
	return err
}
