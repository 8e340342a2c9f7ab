package app

import (
	"errors"
	"testing"

	"github.com/panther-scim/panther-scim/internal/store"
)

// TestStoreSpaceGauges: the store's gauges carry what the store measured, and a
// measurement that failed or that the platform cannot make exports no series rather
// than a 0 that would read as a full disk.
func TestStoreSpaceGauges(t *testing.T) {
	const file, free = "panther_scim_store_file_bytes", "panther_scim_store_disk_free_bytes"
	for _, tc := range []struct {
		name  string
		space func() (store.Space, error)
		want  map[string]float64
	}{
		{"measured", func() (store.Space, error) { return store.Space{FileBytes: 106 << 20, FreeBytes: 900 << 20}, nil },
			map[string]float64{file: 106 << 20, free: 900 << 20}},
		{"free space unknown", func() (store.Space, error) { return store.Space{FileBytes: 4096, FreeBytes: -1}, nil },
			map[string]float64{file: 4096}},
		{"stat failed", func() (store.Space, error) { return store.Space{}, errors.New("no such file") },
			map[string]float64{}},
		{"no store yet", nil, map[string]float64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMetrics()
			m.space = tc.space
			fams, err := m.reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]float64{}
			for _, f := range fams {
				if n := f.GetName(); n == file || n == free {
					got[n] = f.GetMetric()[0].GetGauge().GetValue()
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("exported %v, want %v", got, tc.want)
			}
			for n, v := range tc.want {
				if got[n] != v {
					t.Errorf("%s = %v, want %v", n, got[n], v)
				}
			}
		})
	}
}
