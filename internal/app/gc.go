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

// MemoryLimit is the soft limit on the Go runtime's memory (GOMEMLIMIT) that TuneGC
// sets. At GCPercent alone a burst of writes let the heap reach five times the live
// data and the runtime kept the pages after it: 40 MB of the process's own memory at
// the end of a 10,000-user reorganisation, with 13 MB of heap in use. Near the limit
// the collector runs sooner and returns freed pages to the system; it does not fail
// when the live heap is larger (the collector then takes at most half the CPU), and
// GOMEMLIMIT overrides it.
const MemoryLimit = 40 << 20

// TuneGC sets GCPercent and MemoryLimit unless the environment chose values (GOGC,
// GOMEMLIMIT). Programs that serve call it once at start; it changes the whole process.
func TuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(MemoryLimit)
	}
}
