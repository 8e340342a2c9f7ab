package app

import (
	"errors"
	"math"
	"os"
	"runtime/debug"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// GCPercent is the garbage collector's target (GOGC) that TuneGC sets. panther-scim
// keeps its records in the bbolt file, not on the heap: the live heap is a few MB even
// with 100,000 users, so at Go's default of 100 the collector runs every few MB
// allocated, which measured a third of the CPU of a filter lookup. At 400 the heap
// grows to five times the live data (tens of MB) between collections; lookups over
// loopback went from 4,200 to 5,600 per second on two cores (BENCHMARKS.md).
const GCPercent = 400

// MemoryLimitRatio is the share of the container's memory limit (the cgroup's) that
// TuneGC gives the Go runtime as its soft limit (GOMEMLIMIT). The rest is for the
// store's pages: bbolt maps the file, and the pages the process reads count against
// the same cgroup (83 MB at 100,000 users). Near the soft limit the collector runs
// sooner and returns freed pages to the system, so a burst of allocation (a large
// Panther listing, a 10,000-member group) does not push the store out of memory or
// the container into the OOM killer; above it the collector takes at most half the
// CPU and the program goes on.
const MemoryLimitRatio = 0.5

// GCSettings is what TuneGC chose, for the start-up log.
type GCSettings struct {
	// GCPercent is the GOGC in force (-1: collection off).
	GCPercent int
	// MemoryLimit is the soft memory limit in bytes; math.MaxInt64 means none.
	MemoryLimit int64
	// Source says where MemoryLimit came from: "GOMEMLIMIT", "AUTOMEMLIMIT=off",
	// "cgroup" (MemoryLimitRatio of the container's limit, or the AUTOMEMLIMIT
	// ratio), "none" (no container limit) or "error" (the cgroup could not be read:
	// the runtime's limit is left as it was).
	Source string
	// Err is why the cgroup could not be read, with Source "error".
	Err error
}

// TuneGC sets GCPercent unless GOGC is set, and a soft memory limit of
// MemoryLimitRatio of the container's memory limit: none when the container has no
// limit (or the process runs in none), and GOMEMLIMIT, when set, wins. AUTOMEMLIMIT
// chooses another ratio in (0, 1], or "off". Programs that serve call it once at
// start; it changes the whole process.
func TuneGC() GCSettings {
	return tuneGC(memlimit.FromCgroup)
}

func tuneGC(provider memlimit.Provider) GCSettings {
	var s GCSettings
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
	}
	s.GCPercent = debug.SetGCPercent(-1)
	debug.SetGCPercent(s.GCPercent)

	switch {
	case os.Getenv("GOMEMLIMIT") != "":
		s.Source = "GOMEMLIMIT"
	case os.Getenv("AUTOMEMLIMIT") == "off":
		s.Source = "AUTOMEMLIMIT=off"
	default:
		limited := true
		p := func() (uint64, error) {
			l, err := provider()
			if errors.Is(err, memlimit.ErrCgroupsNotSupported) {
				err = memlimit.ErrNoLimit // not Linux: no container limit to follow
			}
			if errors.Is(err, memlimit.ErrNoLimit) {
				limited = false
			}
			return l, err
		}
		_, err := memlimit.Set(memlimit.WithProvider(p), memlimit.WithRatio(MemoryLimitRatio))
		switch {
		case err != nil:
			s.Source, s.Err = "error", err
		case limited:
			s.Source = "cgroup"
		default:
			s.Source = "none"
		}
	}
	s.MemoryLimit = debug.SetMemoryLimit(-1)
	return s
}

// Limited reports whether a soft memory limit is in force.
func (s GCSettings) Limited() bool { return s.MemoryLimit != math.MaxInt64 }
