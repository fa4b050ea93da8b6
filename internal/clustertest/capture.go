//go:build linux

package clustertest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// captureLimit bounds what a Capture keeps.
const captureLimit = 64 << 20

// Capture records the frames crossing the nodes' links; see Cluster.Capture.
type Capture struct {
	t       testing.TB
	stop    atomic.Bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	buf     bytes.Buffer
	errs    []error
	overrun bool
}

// Capture starts recording every frame that crosses a node's link, in both
// directions, as seen from the host's end of each veth. Traffic between nodes
// on an overlay network shows as VXLAN (UDP 4789) with the inner packets in
// clear, so a test can look for bytes that must not be visible (a secret, a
// route name) in what Stop returns. It stops by itself when the test ends.
func (c *Cluster) Capture(t testing.TB) *Capture {
	t.Helper()
	cp := &Capture{t: t}
	for _, n := range c.Nodes {
		fd, err := packetSocket(n.Veth)
		if err != nil {
			cp.stop.Store(true)
			cp.wg.Wait()
			t.Fatalf("clustertest: capture on %s: %v", n.Veth, err)
		}
		cp.wg.Go(func() { cp.read(fd) })
	}
	t.Cleanup(func() {
		cp.stop.Store(true)
		cp.wg.Wait()
	})
	return cp
}

// packetSocket opens a raw packet socket on the interface, with a receive
// timeout so that the reader notices Stop.
func packetSocket(ifname string) (int, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return -1, err
	}
	proto := int(htons(syscall.ETH_P_ALL))
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, proto)
	if err != nil {
		return -1, fmt.Errorf("packet socket (needs root): %w", err)
	}
	tv := syscall.Timeval{Usec: 100_000}
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		syscall.Close(fd)
		return -1, fmt.Errorf("receive timeout: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: htons(syscall.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		syscall.Close(fd)
		return -1, fmt.Errorf("bind: %w", err)
	}
	return fd, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// read appends the socket's frames until Stop, then drains what the kernel
// queued before Stop: a frame is queued as it crosses the veth, so everything
// that crossed before Stop is kept.
func (cp *Capture) read(fd int) {
	defer syscall.Close(fd)
	frame := make([]byte, 1<<16)
	for {
		flags := 0
		if cp.stop.Load() {
			flags = syscall.MSG_DONTWAIT
		}
		n, _, err := syscall.Recvfrom(fd, frame, flags)
		if errors.Is(err, syscall.EAGAIN) {
			if cp.stop.Load() {
				return
			}
			continue
		}
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		cp.mu.Lock()
		switch {
		case err != nil:
			cp.errs = append(cp.errs, err)
		case cp.buf.Len()+n > captureLimit:
			cp.overrun = true
		default:
			cp.buf.Write(frame[:n])
		}
		full := cp.overrun
		cp.mu.Unlock()
		if err != nil || full {
			return
		}
	}
}

// Stop ends the capture and returns the captured frames, concatenated. It fails
// the test when a read failed or more than 64 MiB went by (a capture that missed
// traffic cannot show that something is absent).
func (cp *Capture) Stop() []byte {
	cp.t.Helper()
	cp.stop.Store(true)
	cp.wg.Wait()
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if len(cp.errs) > 0 {
		cp.t.Errorf("clustertest: capture: %v", errors.Join(cp.errs...))
	}
	if cp.overrun {
		cp.t.Errorf("clustertest: capture: more than %d bytes; the rest was dropped", captureLimit)
	}
	return bytes.Clone(cp.buf.Bytes())
}
