//go:build linux

package clustertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/swarm-ingress/swarm-ingress/internal/swarmtest"
)

// loadTimeout bounds LoadImage.
const loadTimeout = 5 * time.Minute

// LoadImage copies the image ref from the host's engine to every node (docker
// save | docker load; the nodes reach no registry). Loading the same ref again
// is free.
func (c *Cluster) LoadImage(t testing.TB, ref string) {
	t.Helper()
	c.loadMu.Lock()
	defer c.loadMu.Unlock()
	if c.loaded[ref] {
		return
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
	defer cancel()
	if err := c.loadImage(ctx, ref); err != nil {
		t.Fatalf("clustertest: load image %s: %v", ref, err)
	}
	c.loaded[ref] = true
	t.Logf("clustertest: image %s loaded on %d nodes in %v", ref, len(c.Nodes), time.Since(began).Round(time.Millisecond))
}

func (c *Cluster) loadImage(ctx context.Context, ref string) error {
	tarball := filepath.Join(c.dir, fmt.Sprintf("image-%d.tar", len(c.loaded)))
	if err := c.save(ctx, ref, tarball); err != nil {
		return err
	}
	defer os.Remove(tarball)
	var g errgroup.Group
	for _, n := range c.Nodes {
		g.Go(func() error {
			if err := n.load(ctx, tarball); err != nil {
				return fmt.Errorf("on %s: %w", n.Name, err)
			}
			if _, err := n.Client.ImageInspect(ctx, ref); err != nil {
				return fmt.Errorf("on %s after loading: %w", n.Name, err)
			}
			return nil
		})
	}
	return g.Wait()
}

func (c *Cluster) save(ctx context.Context, ref, path string) error {
	rc, err := c.host.ImageSave(ctx, []string{ref})
	if err != nil {
		return fmt.Errorf("save from the host's engine: %w", err)
	}
	defer rc.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return fmt.Errorf("save from the host's engine: %w", err)
	}
	return f.Close()
}

// load runs docker load of the tarball and reports an error the engine put in
// its progress stream.
func (n *Node) load(ctx context.Context, tarball string) error {
	f, err := os.Open(tarball)
	if err != nil {
		return err
	}
	defer f.Close()
	resp, err := n.Client.ImageLoad(ctx, f)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("read load progress: %w", err)
		}
		if msg.Error != "" {
			return errors.New(msg.Error)
		}
	}
}

// BackendImage builds the image of internal/testbackend on the host (see
// swarmtest) and loads it on every node.
func (c *Cluster) BackendImage(t testing.TB) string {
	t.Helper()
	ref := swarmtest.New(t).BackendImage(t)
	c.LoadImage(t, ref)
	return ref
}

// IngressImage builds the image of ./Dockerfile on the host (see swarmtest) and
// loads it on every node.
func (c *Cluster) IngressImage(t testing.TB) string {
	t.Helper()
	ref := swarmtest.New(t).IngressImage(t)
	c.LoadImage(t, ref)
	return ref
}
