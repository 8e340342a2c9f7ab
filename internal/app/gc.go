package app

import (
	"os"
	"runtime/debug"
)

// GCPercent is the garbage collector's target (GOGC) that TuneGC sets. panther-scim
// keeps its records in the bbolt file, not on the heap: the live heap is a few MB even
// with 100,000 users, so at Go's default of 100 the collector runs every few MB
// allocated, which measured a third of the CPU of a filter lookup. At 400 the heap
// grows to five times the live data (tens of MB) between collections; lookups over
// loopback went from 4,200 to 5,600 per second on two cores (BENCHMARKS.md).
const GCPercent = 400

// TuneGC sets GCPercent unless the environment chose a value (GOGC). Programs that
// serve call it once at start; it changes the whole process.
func TuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
	}
}
