//go:build !unix

package proxy

import (
	"net/netip"
	"testing"
)

// refusedAddr is deadAddr where refused_unix_test.go cannot hold the port.
func refusedAddr(t testing.TB) netip.AddrPort { return deadAddr(t) }
