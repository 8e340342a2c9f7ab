package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// After a Panther outage, the changes queued during it are retried as soon as Panther
// answers again, whichever call sees it first, not after the backoff the outage built
// up (minutes, for a deactivation that failed often).
func TestQueuedChangesGoWhenPantherAnswers(t *testing.T) {
	triggers := map[string]func(e *env){
		"a provisioning call succeeds": func(e *env) { e.createUser("other@example.com", "Ot", "Her") },
		"the readiness check succeeds": func(e *env) {
			if r := e.readiness(); r.Status != http.StatusOK {
				e.t.Fatalf("readyz: %s", r.Raw)
			}
		},
	}
	for name, trigger := range triggers {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			leaver := e.createUser("leaver@example.com", "Lea", "Ver")
			e.Fake.SetRateLimitRate(0, -1)
			e.Fake.Down(true)
			e.do("PATCH", "/Users/"+leaver, deactivateOp()).must(t, http.StatusOK)
			waitFor(t, "the queued deactivation to fail once", func() bool {
				in := e.pendingList()
				return len(in) == 1 && in[0].Attempts >= 1
			})
			// As after a long outage: many failed attempts, the next one far away. (A
			// retry failing meanwhile sets it from 10 attempts: minutes away still.)
			if err := e.App.Store.Update(context.Background(), func(tx provision.Tx) error {
				in, err := tx.Intent(leaver)
				if err != nil {
					return err
				}
				in.Attempts, in.NextAttempt = 9, time.Now().Add(time.Hour)
				return tx.PutIntent(in)
			}); err != nil {
				t.Fatal(err)
			}
			e.Fake.Down(false)
			trigger(e)
			waitFor(t, "the deactivation to reach Panther", func() bool { return e.pending() == 0 })
			if _, ok := e.Fake.UserByEmail("leaver@example.com"); ok {
				t.Error("the leaver is still in Panther")
			}
		})
	}
}

// panther_scim_pending_intent_oldest_age_seconds is the age of the oldest pending
// change, 0 when none is pending.
func TestPendingIntentOldestAgeMetric(t *testing.T) {
	e := newEnv(t)
	id := e.createUser("aged@example.com", "A", "Ged")
	age := func() float64 {
		_, ss := e.scrape()
		v, ok := metric(ss, "panther_scim_pending_intent_oldest_age_seconds", nil)
		if !ok {
			t.Fatal("no panther_scim_pending_intent_oldest_age_seconds series")
		}
		return v
	}
	if a := age(); a != 0 {
		t.Errorf("age with nothing pending = %v", a)
	}
	e.Fake.SetRateLimitRate(0, -1)
	e.Fake.Down(true)
	e.do("PATCH", "/Users/"+id, deactivateOp()).must(t, http.StatusOK)
	in := e.pendingList()
	if len(in) != 1 {
		t.Fatalf("pending %+v", in)
	}
	waitFor(t, "the age to pass 10 ms", func() bool { return age() >= 0.01 })
	if a, since := age(), time.Since(in[0].Since).Seconds(); a > since {
		t.Errorf("age %v, but the intent is %v s old", a, since)
	}
	e.Fake.Down(false)
	e.App.Service.PantherAnswered()
	waitFor(t, "the queued change to go", func() bool { return e.pending() == 0 })
	if a := age(); a != 0 {
		t.Errorf("age once drained = %v", a)
	}
}
