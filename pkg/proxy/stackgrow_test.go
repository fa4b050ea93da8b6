package proxy

import (
	"testing"
	"unsafe"
)

// use4KiB needs 4 KiB more of stack than its caller.
//
//go:noinline
func use4KiB() {
	if growStackNever {
		var pad [4 << 10]byte
		growStackSink(pad[:])
	}
}

// stackMoves runs prep and then f in a new goroutine and reports whether
// its stack was moved (grown and copied) while f ran: a local's address
// changes when it is.
func stackMoves(prep, f func()) bool {
	done := make(chan bool)
	go func() {
		prep()
		var here byte
		before := uintptr(unsafe.Pointer(&here))
		f()
		done <- uintptr(unsafe.Pointer(&here)) != before
	}()
	return <-done
}

// TestGrowStack: after growStack, a goroutine has room for the deep stack
// of a proxied request: using 4 KiB more does not grow it again, where a
// new goroutine's stack has to grow for it.
func TestGrowStack(t *testing.T) {
	if !stackMoves(func() {}, use4KiB) {
		t.Skip("new goroutines start with stacks of more than 4 KiB here: nothing to compare")
	}
	if stackMoves(growStack, use4KiB) {
		t.Fatal("the stack grew again after growStack")
	}
}
