package app

import (
	"errors"
	"math"
	"os"
	"runtime/debug"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// restoreGC puts back the process's GC settings after a test changed them.
func restoreGC(t *testing.T) {
	t.Helper()
	pct, limit := debug.SetGCPercent(-1), debug.SetMemoryLimit(-1)
	debug.SetGCPercent(pct)
	t.Cleanup(func() {
		debug.SetGCPercent(pct)
		debug.SetMemoryLimit(limit)
	})
}

func TestTuneGCMemoryLimit(t *testing.T) {
	const mib = 1 << 20
	cases := []struct {
		name       string
		env        map[string]string
		provider   memlimit.Provider
		wantLimit  int64
		wantSource string
	}{
		{"container limit: half of it", nil, memlimit.Limit(256 * mib), 128 * mib, "cgroup"},
		{"no container limit: none", nil, func() (uint64, error) { return 0, memlimit.ErrNoLimit }, math.MaxInt64, "none"},
		{"not Linux: none", nil, func() (uint64, error) { return 0, memlimit.ErrCgroupsNotSupported }, math.MaxInt64, "none"},
		{"GOMEMLIMIT wins", map[string]string{"GOMEMLIMIT": "77MiB"}, memlimit.Limit(256 * mib), 77 * mib, "GOMEMLIMIT"},
		{"AUTOMEMLIMIT ratio", map[string]string{"AUTOMEMLIMIT": "0.25"}, memlimit.Limit(256 * mib), 64 * mib, "cgroup"},
		{"AUTOMEMLIMIT off", map[string]string{"AUTOMEMLIMIT": "off"}, memlimit.Limit(256 * mib), math.MaxInt64, "AUTOMEMLIMIT=off"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			restoreGC(t)
			t.Setenv("GOMEMLIMIT", "")
			t.Setenv("AUTOMEMLIMIT", "")
			t.Setenv("GOGC", "")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			if tc.env["AUTOMEMLIMIT"] == "" {
				// Unset, not empty: the library parses an empty AUTOMEMLIMIT as a ratio.
				unsetenv(t, "AUTOMEMLIMIT")
			}
			// The runtime reads GOMEMLIMIT at start only; a process started with it has it in force.
			debug.SetMemoryLimit(math.MaxInt64)
			if tc.env["GOMEMLIMIT"] != "" {
				debug.SetMemoryLimit(tc.wantLimit)
			}
			s := tuneGC(tc.provider)
			if s.Err != nil {
				t.Fatalf("err %v", s.Err)
			}
			if got := debug.SetMemoryLimit(-1); got != tc.wantLimit || s.MemoryLimit != tc.wantLimit {
				t.Errorf("memory limit %d (reported %d), want %d", got, s.MemoryLimit, tc.wantLimit)
			}
			if s.Source != tc.wantSource {
				t.Errorf("source %q, want %q", s.Source, tc.wantSource)
			}
			if s.Limited() != (tc.wantLimit != math.MaxInt64) {
				t.Errorf("Limited() = %v", s.Limited())
			}
			if s.GCPercent != GCPercent {
				t.Errorf("GOGC %d, want %d", s.GCPercent, GCPercent)
			}
		})
	}
}

func TestTuneGCKeepsGOGCAndReportsErrors(t *testing.T) {
	restoreGC(t)
	t.Setenv("GOGC", "150")
	t.Setenv("GOMEMLIMIT", "")
	unsetenv(t, "AUTOMEMLIMIT")
	debug.SetGCPercent(150)
	debug.SetMemoryLimit(math.MaxInt64)
	s := tuneGC(func() (uint64, error) { return 0, errors.New("no cgroup mount") })
	if s.GCPercent != 150 {
		t.Errorf("GOGC %d, want the environment's 150", s.GCPercent)
	}
	if s.Source != "error" || s.Err == nil || s.Limited() {
		t.Errorf("settings %+v: want source error, an error and no limit", s)
	}
}

// unsetenv removes an environment variable for the test (t.Setenv can only set one).
func unsetenv(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "") // registers the restore
	if err := os.Unsetenv(name); err != nil {
		t.Fatal(err)
	}
}
