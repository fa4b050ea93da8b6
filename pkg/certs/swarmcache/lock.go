package swarmcache

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/swarm"
	"github.com/rs/zerolog"
)

// Lock defaults.
const (
	DefaultTTL      = 2 * time.Minute
	DefaultPollMin  = 200 * time.Millisecond
	DefaultPollMax  = 2 * time.Second
	unlockTimeout   = 10 * time.Second
	heartbeatPerTTL = 3 // renewals per TTL
)

// LockerConfig configures a Locker.
type LockerConfig struct {
	Client    API               // required: the Docker client of a Swarm manager
	Namespace string            // must match the Store's; empty: DefaultNamespace
	Labels    map[string]string // optional extra labels on every lock config
	Holder    string            // this instance's id; empty: hostname, pid and a random suffix
	TTL       time.Duration     // a lock not renewed for this long is taken over; zero: DefaultTTL
	PollMin   time.Duration     // first wait between attempts; zero: DefaultPollMin
	PollMax   time.Duration     // longest wait between attempts; zero: DefaultPollMax
	Logger    zerolog.Logger    // default disabled
}

// Locker is a cross-instance mutex on Swarm configs, satisfying certs.Locker.
//
// A lock is the config ingress-lock-<hash(namespace, name)>: creating it is
// acquiring it, since Swarm refuses a second config of the same name. Its
// labels name the holder and an expiry time, which the holder pushes forward
// every TTL/3 while it holds the lock (an update with the config's version,
// so a stale renewal fails). A waiter polls with bounded exponential backoff
// and takes over a lock whose expiry has passed by removing that config (by
// ID) and creating its own: if several waiters do so, one create succeeds.
// Unlock removes the config by the ID it created, so it never removes a lock
// that another instance took over. Expiry compares wall clocks of different
// nodes: keep them in sync (NTP) to well within the TTL.
type Locker struct {
	cfg LockerConfig
	log zerolog.Logger
}

// NewLocker fills in defaults.
func NewLocker(cfg LockerConfig) *Locker {
	cfg.Namespace = cmp.Or(cfg.Namespace, DefaultNamespace)
	cfg.Labels = maps.Clone(cfg.Labels)
	cfg.TTL = cmp.Or(cfg.TTL, DefaultTTL)
	cfg.PollMin = cmp.Or(cfg.PollMin, DefaultPollMin)
	cfg.PollMax = max(cmp.Or(cfg.PollMax, DefaultPollMax), cfg.PollMin)
	if cfg.Holder == "" {
		host, _ := os.Hostname()
		cfg.Holder = fmt.Sprintf("%s-%d-%s", cmp.Or(host, "ingress"), os.Getpid(), randomHex(4))
	}
	return &Locker{cfg: cfg, log: cfg.Logger.With().Str(fieldHolder, cfg.Holder).Logger()}
}

// Holder is this locker's holder id, as written in its lock configs.
func (l *Locker) Holder() string { return l.cfg.Holder }

// lockName is the config name of lock name.
func (l *Locker) lockName(name string) string {
	return lockPrefix + keyHash(l.cfg.Namespace + "\x00" + name)[:shortHash]
}

// Lock blocks until this instance holds the lock called name, or ctx ends.
func (l *Locker) Lock(ctx context.Context, name string) (func(), error) {
	configName := l.lockName(name)
	log := l.log.With().Str(fieldLock, name).Str(fieldConfig, configName).Logger()
	wait := l.cfg.PollMin
	for {
		id, err := l.tryCreate(ctx, configName)
		if err == nil {
			return l.hold(id, configName, log), nil
		}
		if !isConflict(err) {
			return nil, fmt.Errorf("lock %s: create config %s: %w", name, configName, err)
		}
		retryNow, err := l.takeOverIfExpired(ctx, configName, log)
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", name, err)
		}
		if retryNow {
			continue
		}
		jittered := wait/2 + rand.N(wait/2+1)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("lock %s: %w", name, context.Cause(ctx))
		case <-time.After(jittered):
		}
		wait = min(2*wait, l.cfg.PollMax)
	}
}

func (l *Locker) spec(configName string) swarm.ConfigSpec {
	return swarm.ConfigSpec{
		Annotations: swarm.Annotations{
			Name: configName,
			Labels: labelsFor(map[string]string{
				LabelLock:    "1",
				LabelHolder:  l.cfg.Holder,
				LabelExpires: time.Now().Add(l.cfg.TTL).UTC().Format(time.RFC3339Nano),
			}, l.cfg.Namespace, l.cfg.Labels),
		},
		Data: []byte(l.cfg.Holder), // Swarm refuses empty data; the holder id is no secret
	}
}

func (l *Locker) tryCreate(ctx context.Context, configName string) (string, error) {
	resp, err := l.cfg.Client.ConfigCreate(ctx, l.spec(configName))
	if err != nil {
		return "", err
	}
	return resp.ID, nil
}

// takeOverIfExpired inspects the existing lock; when it is gone or expired
// (then removed here), it reports that the caller should try again at once.
func (l *Locker) takeOverIfExpired(ctx context.Context, configName string, log zerolog.Logger) (bool, error) {
	c, _, err := l.cfg.Client.ConfigInspectWithRaw(ctx, configName)
	if err != nil {
		if ignoreNotFound(err) == nil {
			return true, nil // released meanwhile
		}
		return false, fmt.Errorf("inspect config %s: %w", configName, err)
	}
	expires, perr := time.Parse(time.RFC3339Nano, c.Spec.Labels[LabelExpires])
	if perr == nil && time.Now().Before(expires) {
		return false, nil
	}
	log.Warn().Str("previous_holder", c.Spec.Labels[LabelHolder]).Time("expired_at", expires).
		Msg("taking over an expired lock")
	if err := ignoreNotFound(l.cfg.Client.ConfigRemove(ctx, c.ID)); err != nil {
		return false, fmt.Errorf("remove expired lock config %s: %w", configName, err)
	}
	return true, nil
}

// hold starts renewing the lock config id and returns its unlock.
func (l *Locker) hold(id, configName string, log zerolog.Logger) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.heartbeat(ctx, id, configName, log)
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
			ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
			defer cancel()
			if err := ignoreNotFound(l.cfg.Client.ConfigRemove(ctx, id)); err != nil {
				log.Warn().Err(err).Msg("unlock: lock config not removed; it expires by itself")
			}
		})
	}
}

// heartbeat pushes the expiry of lock config id forward until ctx ends or
// the lock is lost.
func (l *Locker) heartbeat(ctx context.Context, id, configName string, log zerolog.Logger) {
	ticker := time.NewTicker(l.cfg.TTL / heartbeatPerTTL)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		err := l.renew(ctx, id, configName)
		switch {
		case err == nil:
		case errors.Is(err, errLost):
			log.Error().Err(err).Msg("lock lost while held")
			return
		case ctx.Err() == nil:
			log.Warn().Err(err).Msg("lock not renewed; retrying")
		}
	}
}

var errLost = errors.New("lock config removed or taken over")

func (l *Locker) renew(ctx context.Context, id, configName string) error {
	c, _, err := l.cfg.Client.ConfigInspectWithRaw(ctx, id)
	if cerrdefs.IsNotFound(err) {
		return errLost
	}
	if err != nil {
		return fmt.Errorf("inspect lock config %s: %w", configName, err)
	}
	if c.Spec.Labels[LabelHolder] != l.cfg.Holder {
		return errLost
	}
	spec := l.spec(configName)
	spec.Data = c.Spec.Data
	if err := l.cfg.Client.ConfigUpdate(ctx, id, c.Version, spec); err != nil {
		return fmt.Errorf("renew lock config %s: %w", configName, err)
	}
	return nil
}
