package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingWriter counts the writes it gets and keeps their bytes.
type recordingWriter struct {
	mu     sync.Mutex
	writes int
	buf    bytes.Buffer
	wrote  chan struct{}
}

func (r *recordingWriter) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes++
	select {
	case r.wrote <- struct{}{}:
	default:
	}
	return r.buf.Write(p)
}

func TestLogBufferBatchesAndFlushes(t *testing.T) {
	out := &recordingWriter{wrote: make(chan struct{}, 1)}
	b := newLogBuffer(out)
	for i := 0; i < 100; i++ {
		b.Write([]byte(`{"message":"request"}` + "\n"))
	}
	select {
	case <-out.wrote: // the periodic flush wrote without Close
	case <-time.After(5 * time.Second):
		t.Fatal("buffered lines were not written by the periodic flush")
	}
	b.Close()
	out.mu.Lock()
	defer out.mu.Unlock()
	if got := strings.Count(out.buf.String(), "\n"); got != 100 {
		t.Fatalf("%d lines written, want 100", got)
	}
	if out.writes >= 100 {
		t.Fatalf("%d writes for 100 lines: not batched", out.writes)
	}
}

func TestLogBufferNeverSplitsALine(t *testing.T) {
	out := &recordingWriter{wrote: make(chan struct{}, 1)}
	b := newLogBuffer(out)
	small := strings.Repeat("a", 60<<10) + "\n"
	big := strings.Repeat("b", 10<<10) + "\n"
	b.Write([]byte(small))
	b.Write([]byte(big)) // does not fit: the buffer is flushed first
	b.Close()
	out.mu.Lock()
	defer out.mu.Unlock()
	if out.buf.String() != small+big {
		t.Fatal("lines lost or reordered")
	}
}
