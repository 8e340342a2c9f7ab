package yield

import "testing"

func TestCounterYieldsEveryNthItem(t *testing.T) {
	c := Counter{Every: 4}
	var at []int
	for i := 1; i <= 13; i++ {
		if c.Tick() {
			at = append(at, i)
		}
	}
	if len(at) != 3 || at[0] != 4 || at[1] != 8 || at[2] != 12 {
		t.Fatalf("yielded at items %v, want 4, 8 and 12", at)
	}
}

func TestCounterOfOneYieldsEveryTime(t *testing.T) {
	c := Counter{Every: 1}
	for i := 0; i < 3; i++ {
		if !c.Tick() {
			t.Fatalf("item %d: no yield with Every 1", i+1)
		}
	}
}

func TestOSYield(t *testing.T) {
	if err := osYield(); err != nil {
		t.Fatalf("sched_yield: %v", err)
	}
}

// BenchmarkNow is the price of one yield when no other goroutine of the process waits
// (other processes' threads may).
func BenchmarkNow(b *testing.B) {
	for b.Loop() {
		Now()
	}
}
