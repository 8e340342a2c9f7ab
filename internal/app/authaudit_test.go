package app

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/panther-scim/panther-scim/internal/auth"
)

// summary counts the failures the entries stand for, by address and reason, and
// the number of entries.
func summary(t *testing.T, l *AuthFailureLog) (failures map[string]int, entries int) {
	t.Helper()
	failures = map[string]int{}
	es := l.take()
	for _, e := range es {
		if e.Action != ActionAuthFailed || e.Time.IsZero() {
			t.Errorf("entry %+v", e)
		}
		n, err := strconv.Atoi(e.After["count"])
		if err != nil || n < 1 {
			t.Errorf("count %q", e.After["count"])
		}
		failures[e.After["sourceIP"]+" "+e.After["reason"]+" "+e.After["limited"]] += n
	}
	return failures, len(es)
}

func TestAuthFailureLogBounds(t *testing.T) {
	l := NewAuthFailureLog()
	for range 3 {
		l.Record(auth.Failure{Addr: "10.0.0.1", Reason: auth.ReasonInvalid})
	}
	for range 12 {
		l.Record(auth.Failure{Addr: "10.0.0.2", Reason: auth.ReasonMissing, Limited: true})
	}
	got, entries := summary(t, l)
	want := map[string]int{"10.0.0.1 invalid false": 3, "10.0.0.2 missing true": 12}
	if fmt.Sprint(got) != fmt.Sprint(want) || entries != 3+5+1 {
		t.Fatalf("got %v in %d entries, want %v in 9 (5 single entries for an address, then a count)", got, entries, want)
	}
	if got, entries := summary(t, l); len(got) != 0 || entries != 0 {
		t.Fatalf("a second take returned %v", got)
	}

	// A flood from many addresses: every failure counted, in a bounded number of entries.
	total := 0
	for i := range 50 {
		for range 100 {
			l.Record(auth.Failure{Addr: fmt.Sprintf("10.1.0.%d", i), Reason: auth.ReasonInvalid})
			total++
		}
	}
	got, entries = summary(t, l)
	sum := 0
	for _, n := range got {
		sum += n
	}
	if sum != total || entries > maxAuthEvents+maxAuthKeys+1 {
		t.Errorf("%d failures in %d entries, want %d in at most %d", sum, entries, total, maxAuthEvents+maxAuthKeys+1)
	}
	if got[" various false"] != 30*100 {
		t.Errorf("overflow entry counts %d, want the 3000 failures of the 30 addresses beyond the first 20", got[" various false"])
	}
}
