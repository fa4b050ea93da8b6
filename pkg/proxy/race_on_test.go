//go:build race

package proxy

// raceEnabled: the race detector slows memory-heavy loops about fifty
// times; tests that only measure sizes run smaller under it.
const raceEnabled = true
