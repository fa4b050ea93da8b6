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
// to the connect timeout (at least 1s).
func TestUpstreamUserTimeout(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct{ connect, want time.Duration }{{3 * time.Second, 3 * time.Second}, {200 * time.Millisecond, time.Second}} {
		c, err := upstreamDial(tc.connect)(t.Context(), ln.Addr().String())
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
			t.Errorf("connect timeout %s: TCP_USER_TIMEOUT %dms (%v), want %s", tc.connect, got, serr, tc.want)
		}
	}
}
