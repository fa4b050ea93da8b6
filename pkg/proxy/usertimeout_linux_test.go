//go:build linux

package proxy

import (
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestUpstreamUserTimeout: upstream connections carry TCP_USER_TIMEOUT set
// to upstreamUserTimeout (1s), whatever the route's connect timeout.
func TestUpstreamUserTimeout(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct{ want time.Duration }{{time.Second}} {
		c, err := dialUpstream(t.Context(), ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		var got int
		var serr error
		rc, err := c.(syscall.Conn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		_ = rc.Control(func(fd uintptr) { got, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT) })
		c.Close()
		if serr != nil || time.Duration(got)*time.Millisecond != tc.want {
			t.Errorf("TCP_USER_TIMEOUT %dms (%v), want %s", got, serr, tc.want)
		}
	}
}
