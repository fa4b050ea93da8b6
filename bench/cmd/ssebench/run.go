package main

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// runStreams opens cfg.streams streams, measures a window and prints results.
func runStreams(cfg config) error {
	idle, err := sampleProcs(cfg.pids)
	if err != nil {
		return err
	}

	streams := make([]stream, cfg.streams)
	var (
		win     atomic.Pointer[window]
		closing atomic.Bool
		ready   sync.WaitGroup // response head read (or failed)
		done    sync.WaitGroup // reader goroutine ended
	)
	ready.Add(len(streams))
	done.Add(len(streams))
	begin := time.Now()
	for i := range streams {
		time.Sleep(time.Until(begin.Add(cfg.ramp * time.Duration(i) / time.Duration(len(streams)))))
		go func(s *stream) {
			defer done.Done()
			if !s.open(cfg) {
				ready.Done()
				return
			}
			body, ok := s.readResponse(cfg)
			ready.Done()
			if ok {
				s.read(body, &win, &closing)
			}
		}(&streams[i])
	}
	if !waitTimeout(&ready, cfg.ramp+15*time.Second) {
		fmt.Fprintln(os.Stderr, "ssebench: some streams got no response head within 15s after the ramp")
	}
	opened := time.Since(begin)
	time.Sleep(cfg.settle)

	atStart, err := sampleProcs(cfg.pids)
	if err != nil {
		return err
	}
	w := window{start: time.Now()}
	w.end = w.start.Add(cfg.window)
	win.Store(&w)
	time.Sleep(time.Until(w.end))
	atEnd, err := sampleProcs(cfg.pids)
	if err != nil {
		return err
	}

	closing.Store(true)
	for i := range streams {
		if streams[i].conn != nil {
			_ = streams[i].conn.Close()
		}
	}
	if !waitTimeout(&done, 10*time.Second) {
		return fmt.Errorf("readers did not stop within 10s of closing")
	}

	var (
		delays  []time.Duration
		errs    [numErrKinds]int
		example = map[errKind]string{}
		ok      int
	)
	for i := range streams {
		s := &streams[i]
		s.finish(w, cfg.stallAfter)
		delays = append(delays, s.delays...)
		errs[s.err]++
		if s.err == errNone {
			ok++
		} else if _, seen := example[s.err]; !seen {
			example[s.err] = s.errText
		}
	}
	slices.Sort(delays)
	expected := int(cfg.window/time.Second) * cfg.streams
	failed := len(streams) - ok

	fmt.Printf("streams %d opened in %v, window %v, events %d (about %d expected)\n",
		len(streams), opened.Round(time.Millisecond), cfg.window, len(delays), expected)
	for k := errDial; k < numErrKinds; k++ {
		if errs[k] > 0 {
			fmt.Printf("  errors %-6s %d, e.g. %s\n", errKindNames[k], errs[k], example[k])
		}
	}
	kbPerStream, usPerEvent := 0.0, 0.0
	if len(cfg.pids) > 0 && ok > 0 && len(delays) > 0 {
		kbPerStream = float64(atEnd.rssKB-idle.rssKB) / float64(ok)
		cpu := time.Duration(atEnd.cpuTicks-atStart.cpuTicks) * time.Second / clockTicks
		usPerEvent = float64(cpu/time.Microsecond) / float64(len(delays))
		fmt.Printf("  proxy RSS idle %d kB, with streams %d kB; proxy CPU in the window %v\n",
			idle.rssKB, atEnd.rssKB, cpu)
	}
	fmt.Printf("RESULT streams=%d ok=%d events=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f errors=%d dial=%d status=%d read=%d stall=%d rss_idle_kb=%d rss_open_kb=%d kb_per_stream=%.1f cpu_us_per_event=%.1f\n",
		len(streams), ok, len(delays), ms(pct(delays, 0.50)), ms(pct(delays, 0.99)), ms(pct(delays, 1)),
		failed, errs[errDial], errs[errStatus], errs[errRead], errs[errStall], idle.rssKB, atEnd.rssKB, kbPerStream, usPerEvent)
	return nil
}

// runFirstEvent opens one stream and reports when its head and first event came.
func runFirstEvent(cfg config) error {
	var s stream
	begin := time.Now()
	if !s.open(cfg) {
		return fmt.Errorf("open: %s", s.errText)
	}
	defer s.conn.Close()
	_ = s.conn.SetDeadline(begin.Add(cfg.timeout))
	body, ok := s.readResponse(cfg)
	if !ok {
		fmt.Printf("no response head within %v (%s)\n", cfg.timeout, s.errText)
		fmt.Printf("RESULT head_ms=none first_event_ms=none events=0 timeout_s=%.0f\n", cfg.timeout.Seconds())
		return nil
	}
	_ = s.conn.SetDeadline(begin.Add(cfg.timeout))
	head := time.Since(begin)
	first := "none"
	events := 0
	for {
		line, err := body.ReadSlice('\n')
		if err != nil {
			break
		}
		if len(line) > 6 && string(line[:6]) == "data: " {
			if events == 0 {
				first = fmt.Sprintf("%.1f", ms(time.Since(begin)))
			}
			events++
		}
	}
	fmt.Printf("response head after %.1f ms; first event: %s ms; %d events within %v\n",
		ms(head), first, events, cfg.timeout)
	fmt.Printf("RESULT head_ms=%.1f first_event_ms=%s events=%d timeout_s=%.0f\n",
		ms(head), first, events, cfg.timeout.Seconds())
	return nil
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	c := make(chan struct{})
	go func() { wg.Wait(); close(c) }()
	select {
	case <-c:
		return true
	case <-time.After(d):
		return false
	}
}

// pct returns the q-quantile of sorted (nearest rank); 0 when empty.
func pct(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
