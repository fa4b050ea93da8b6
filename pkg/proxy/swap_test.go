package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/swarm-ingress/swarm-ingress/pkg/route"
)

// TestSwapUnderLoad swaps the table continuously while clients send
// requests and an event stream stays open: no request may fail and the
// stream must go on.
func TestSwapUnderLoad(t *testing.T) {
	named := func(name string) *httptest.Server {
		return backend(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, name) })
	}
	a, b := named("a"), named("b")
	l := &lockstep{contentType: "text/event-stream", next: make(chan struct{}),
		chunks: []string{"data: 1\n\n", "data: 2\n\n", "data: 3\n\n"}}
	sse := httptest.NewServer(l)
	t.Cleanup(sse.Close)

	// Each table is built from fresh Route values, as discovery does.
	tableFor := func(i int) *route.Table {
		app := testRoute("app.test", addrOf(t, a))
		if i%2 == 1 {
			app.Upstreams = append(app.Upstreams, addrOf(t, b))
		}
		stream := testRoute("sse.test", addrOf(t, sse))
		stream.Service = "sse"
		return table(app, stream)
	}
	f := newFixture(t, Config{}, tableFor(0))

	// The stream must outlive the load, however long a busy machine makes
	// it: its request is not bounded by waitLimit (newRequest), only each
	// read of it is (readLockstep).
	streamReq, err := http.NewRequestWithContext(t.Context(), "GET", f.front.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	streamReq.Host = "sse.test"
	streamRes := f.do(t, streamReq)

	const workers, perWorker = 8, 100
	var failures, swaps atomic.Int64
	done := make(chan struct{})
	swapped := make(chan struct{})
	tick := make(chan struct{}) // a swap per request that finds the swapper ready
	go func() {
		defer close(swapped)
		for i := 1; ; i++ {
			select {
			case <-done:
				return
			case <-tick:
			}
			f.h.SetTable(tableFor(i))
			swaps.Add(1)
		}
	}()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			client := f.front.Client()
			for i := range perWorker {
				res, err := client.Do(f.newRequest(t, "GET", "app.test", "/", nil))
				if err != nil {
					failures.Add(1)
					t.Errorf("worker %d request %d: %v", w, i, err)
					continue
				}
				body, err := io.ReadAll(res.Body)
				res.Body.Close()
				select {
				case tick <- struct{}{}:
				default:
				}
				if err != nil || res.StatusCode != 200 || (string(body) != "a" && string(body) != "b") {
					failures.Add(1)
					t.Errorf("worker %d request %d: %d %q %v", w, i, res.StatusCode, body, err)
				}
			}
		})
	}
	wg.Wait()
	close(done)
	<-swapped
	if failures.Load() != 0 {
		t.Fatalf("%d of %d requests failed during %d swaps", failures.Load(), workers*perWorker, swaps.Load())
	}
	if swaps.Load() < 2 {
		t.Fatalf("only %d swaps happened during the load", swaps.Load())
	}
	t.Logf("%d requests, %d swaps, no failure", workers*perWorker, swaps.Load())
	readLockstep(t, streamRes.Body, l, "\n\n") // the stream opened before the swaps still flows
}
