package main

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// testStrangersSurviveCrashes is issue 14's first case on the real binary: Panther
// users created directly in Panther (administrators among them), and inactive SCIM
// users with the same emails imported while the server is killed with SIGKILL again
// and again, once at the crash hook right after a store write and then at whatever
// point the import has reached. Such records never ask for Panther access, so however
// the process dies, no pre-existing Panther user may be deleted or changed, and no
// Panther user may be created.
func testStrangersSurviveCrashes(t *testing.T, bin string) {
	t.Parallel()
	r := newRig(t, bin)
	const strangers, kills, workers = 240, 6, 8
	roles := []string{"Admin", "Analyst", "AnalystReadOnly"}
	var emails []string
	for i := range strangers {
		email := fmt.Sprintf("stranger%03d@example.com", i)
		if _, err := r.fake.AddUser(email, "Str", fmt.Sprintf("Anger%d", i), roles[i%len(roles)]); err != nil {
			t.Fatal(err)
		}
		emails = append(emails, email)
	}
	before := r.fake.Users()
	inactive := func(email string) map[string]any {
		u := scimUser(email, "Str", "Anger")
		u["active"] = false
		return u
	}

	// Deterministically first: killed right after the store write of one such create,
	// with its intent pending.
	r.startSettled("after-store-write")
	r.crashOn("POST", "/Users", inactive(emails[0]))

	// Then an import 8 at a time, killed once every few dozen creates. A request the
	// kill cut off is sent again in the next round, as an IdP does: 201, or 409 when
	// its record was stored before the kill.
	remaining := emails
	for round := 0; len(remaining) > 0; round++ {
		if round > kills+2 {
			t.Fatalf("%d users still not imported after %d rounds", len(remaining), round)
		}
		r.start("")
		killAfter := int32(len(remaining) / (kills - min(round, kills-1)))
		if round >= kills {
			killAfter = -1 // the last rounds finish the import
		}
		var (
			created atomic.Int32
			once    sync.Once
			mu      sync.Mutex
			retry   []string
			wg      sync.WaitGroup
		)
		queue := make(chan string)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for email := range queue {
					a, err := r.send("POST", "/Users", inactive(email))
					ok := err == nil && (a.status == http.StatusCreated || a.status == http.StatusConflict)
					if err == nil && !ok {
						t.Errorf("POST %s: %d %s", email, a.status, a.raw)
					}
					if !ok {
						mu.Lock()
						retry = append(retry, email)
						mu.Unlock()
						continue
					}
					if a.status == http.StatusCreated && created.Add(1) == killAfter {
						once.Do(func() { _ = r.proc.Process.Kill() })
					}
				}
			}()
		}
		for _, email := range remaining {
			queue <- email
		}
		close(queue)
		wg.Wait()
		if killAfter > 0 && created.Load() >= killAfter {
			r.killedBySIGKILL()
		} else {
			r.stop()
		}
		remaining = retry
	}

	r.start("")
	r.drained()
	r.stop()
	after := map[string]provision.PantherUser{}
	for _, u := range r.fake.Users() {
		after[u.ID] = u
	}
	for _, u := range before {
		if now, ok := after[u.ID]; !ok {
			t.Errorf("pre-existing Panther user %s (%s) was deleted", u.Email, u.RoleName)
		} else if now != u {
			t.Errorf("pre-existing Panther user %s was changed: %+v, was %+v", u.Email, now, u)
		}
	}
	if len(after) != len(before) {
		t.Errorf("%d Panther users, want the %d that were there", len(after), len(before))
	}
	for _, op := range []string{"inviteUser", "updateUser", "deleteUser"} {
		if n := r.fake.Count(op); n != 0 {
			t.Errorf("%d %s calls for records that never asked for Panther access", n, op)
		}
	}
	users, intents := r.stored()
	if len(users) != strangers || intents != 0 {
		t.Errorf("%d records (want %d), %d intents left", len(users), strangers, intents)
	}
}
