package proxy

// An HTTP/2 request runs in a goroutine of its own, which net/http's
// HTTP/2 server starts for every stream with a small stack. The proxied
// exchange needs up to 8 KiB of stack at its deepest (reading the
// upstream's response head under the handler), so the runtime used to grow
// and copy the stack there, once or twice per request, walking every frame
// of that deep stack each time: 8% of the CPU under h2load (measured in
// bench/FINDINGS.md, "HTTP/2 and memory"). growStack grows it once, at the top of the handler, where the copy is
// short. HTTP/1.1 needs none of this: its connection goroutine keeps its
// grown stack from one request to the next.

// growStackFrame is the frame growStack reserves: with what the server
// already uses, the runtime doubles the stack to 8 KiB to fit it. (It was
// 16 KiB while the upstream's head was parsed by net/http.ReadResponse.)
const growStackFrame = 5 << 10

// growStackNever is false; the compiler cannot know it, so it keeps the
// frame without zeroing it.
var growStackNever bool

// growStack grows the calling goroutine's stack to 8 KiB in one step.
//
//go:noinline
func growStack() {
	if growStackNever {
		var pad [growStackFrame]byte
		growStackSink(pad[:])
	}
}

//go:noinline
func growStackSink(b []byte) { _ = b[len(b)-1] }
