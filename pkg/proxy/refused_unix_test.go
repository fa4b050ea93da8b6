//go:build unix

package proxy

import (
	"net/netip"
	"syscall"
	"testing"
)

// refusedAddr is a loopback address that refuses connections for the whole
// test: a socket bound to it, never listening, holds the port (without
// SO_REUSEADDR no other process can take it), and a connection to a port
// with no listener is refused. deadAddr's port may be reused by another
// process meanwhile on a busy machine.
func refusedAddr(t testing.TB) netip.AddrPort {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*syscall.SockaddrInet4).Port))
}
