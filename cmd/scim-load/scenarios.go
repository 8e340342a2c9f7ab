package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/panther-scim/panther-scim/internal/bench"
	"github.com/panther-scim/panther-scim/internal/pantherfake"
)

// importedUser is a user the import created.
type importedUser struct {
	ID, UserName, ExternalID string
	Group                    int
}

const (
	userSchema  = "urn:ietf:params:scim:schemas:core:2.0:User"
	groupSchema = "urn:ietf:params:scim:schemas:core:2.0:Group"
	patchSchema = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
)

// phase measures one part of a scenario.
type phase struct {
	name      string
	rec       *recorder
	start     time.Time
	serverCPU time.Duration // at the start, --self only
	selfCPU   time.Duration
	// The double's counters at the start, and the bridge's Panther client's
	// (from its /metrics: time and calls, retries included).
	fakeTime, fakeCalls     int64
	clientTime, clientCalls float64
}

func (m *Main) begin(name string) *phase {
	if m.fake != nil {
		m.fake.ResetCalls()
	}
	p := &phase{name: name, rec: newRecorder(), start: time.Now(), selfCPU: processCPU(),
		fakeTime: m.fakeTime.Load(), fakeCalls: m.fakeCalls.Load()}
	if m.server != nil {
		p.serverCPU = m.server.cpuTime()
		p.clientTime, p.clientCalls = pantherClientTime(context.Background(), m.client, m.Config.URL)
	}
	return p
}

// end waits until no change is pending (so that every Panther call the phase caused
// has been made) and records the phase. expected are the Panther calls by operation
// the phase must make, nil when it makes none.
func (m *Main) end(ctx context.Context, p *phase, expected map[string]int) Phase {
	answered := time.Since(p.start)
	out := Phase{Name: p.name, Requests: p.rec.count(), Errors: int(p.rec.errors.Load()), Latency: p.rec.percentiles(),
		AnsweredSeconds: answered.Seconds()}
	if s, ok := p.rec.firstEr.Load().(string); ok {
		out.FirstError = s
	}
	// Changes the requests left queued (a request's sync budget ran out) finish in the
	// background; the phase lasts until they have.
	for pendingIntents(ctx, m.client, m.Config.URL) > 0 && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	total := time.Since(p.start)
	out.Seconds = total.Seconds()
	out.RequestsPerSecond = float64(out.Requests) / answered.Seconds()
	if out.Requests > 0 {
		// This process runs the clients (and, with --self, the Panther double).
		out.ClientCPUPerRequestMS = ms(processCPU()-p.selfCPU) / float64(out.Requests)
		if m.server != nil {
			out.ServerCPUPerRequestMS = ms(m.server.cpuTime()-p.serverCPU) / float64(out.Requests)
		}
	}
	if m.fake == nil {
		return out
	}
	out.PantherCalls = map[string]int{}
	calls := m.fake.Calls()
	n := len(calls)
	if m.Config.CallsLog != "" {
		m.writeCallsLog(p.name, calls)
	}
	for _, c := range calls {
		out.PantherCalls[c.Op]++
	}
	// The steady state: the rate of calls between the first and last tenth of them,
	// against the rate Panther allows (concurrency / latency). What the whole phase
	// loses beyond that is ramp-up and tail (the last requests run with fewer calls
	// to make than slots).
	if n >= 20 {
		at := make([]time.Time, n)
		for i, c := range calls {
			at[i] = c.Time
		}
		slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
		lo, hi := n/10, n-1-n/10
		if d := at[hi].Sub(at[lo]); d > 0 && m.Config.PantherLatency > 0 { // no ratio without latency
			rate := float64(hi-lo) / d.Seconds()
			allowed := float64(m.Config.PantherConcurrency) / m.Config.PantherLatency.Seconds()
			out.SteadyRatio = allowed / rate
		}
	}
	out.ExpectedCalls = expected
	for op, got := range out.PantherCalls {
		// Role lookups, and the user lists that check for another administrator before
		// an administrator is moved out of an admin role (when no remembered one
		// confirms), are not no-op calls.
		if extra := got - expected[op]; extra > 0 && op != "roleByName" && op != "roleById" && op != "users" {
			out.UnexpectedCalls += extra
		}
	}
	// How long a call took at the double, and as the bridge's client saw it (which
	// includes the HTTP exchange and waiting for this machine's CPUs).
	if fc := m.fakeCalls.Load() - p.fakeCalls; fc > 0 {
		out.DoubleCallMS = ms(time.Duration((m.fakeTime.Load() - p.fakeTime) / fc))
	}
	if t, c := pantherClientTime(ctx, m.client, m.Config.URL); c > p.clientCalls {
		out.ClientCallMS = (t - p.clientTime) / (c - p.clientCalls) * 1000
	}
	if n > 0 {
		L, P := m.Config.PantherLatency, m.Config.PantherConcurrency
		ideal := time.Duration(n) * L / time.Duration(P)
		out.IdealSeconds = ideal.Seconds()
		if ideal > 0 {
			out.Ratio = total.Seconds() / ideal.Seconds()
		}
	}
	return out
}

func (m *Main) runImport(ctx context.Context, d *driver) ([]importedUser, error) {
	c := m.Config
	users := make([]importedUser, c.Users)
	p := m.begin("import users")
	created := make([]time.Time, c.Users) // when each create was answered
	err := parallel(ctx, c.Concurrency, c.Users, func(ctx context.Context, i int) error {
		name := fmt.Sprintf("load%06d@example.com", i)
		u := importedUser{UserName: name, ExternalID: fmt.Sprintf("00l%06d", i), Group: -1}
		if c.Groups > 0 {
			u.Group = i % c.Groups
		}
		// Okta looks the user up before creating it.
		_, _ = p.rec.call(ctx, d, "lookup", "GET", "/Users?filter="+url.QueryEscape(fmt.Sprintf("userName eq %q", name))+"&startIndex=1&count=100", nil, http.StatusOK)
		raw, err := p.rec.call(ctx, d, "create", "POST", "/Users", map[string]any{
			"schemas": []string{userSchema}, "userName": name, "externalId": u.ExternalID,
			"name":        map[string]any{"givenName": "Load", "familyName": fmt.Sprintf("User%06d", i)},
			"displayName": fmt.Sprintf("Load User%06d", i),
			"emails":      []any{map[string]any{"primary": true, "value": name, "type": "work"}},
			"active":      true,
		}, http.StatusCreated)
		if err == nil {
			var doc struct{ ID string }
			_ = json.Unmarshal(raw, &doc)
			u.ID = doc.ID
		}
		created[i] = time.Now()
		users[i] = u
		return ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	ph := m.end(ctx, p, map[string]int{"inviteUser": c.Users})
	ph.Progress = tenths(p.start, created)
	m.report.Phases = append(m.report.Phases, ph)
	if m.server != nil {
		m.report.MemoryAfterImport = m.server.memory(ctx, m.client)
	}
	if c.Groups == 0 {
		return users, nil
	}

	p = m.begin("import groups")
	groupIDs := make([]string, c.Groups)
	err = parallel(ctx, c.Concurrency, c.Groups, func(ctx context.Context, g int) error {
		raw, err := p.rec.call(ctx, d, "group create", "POST", "/Groups", map[string]any{
			"schemas": []string{groupSchema}, "displayName": loadGroupName(g), "members": []any{},
		}, http.StatusCreated)
		if err != nil {
			return err
		}
		var doc struct{ ID string }
		_ = json.Unmarshal(raw, &doc)
		groupIDs[g] = doc.ID
		return nil
	})
	if err != nil {
		return nil, err
	}
	type batch struct {
		group int
		ids   []string
	}
	var batches []batch
	changes := 0
	byGroup := make([][]string, c.Groups)
	for _, u := range users {
		if u.ID != "" {
			byGroup[u.Group] = append(byGroup[u.Group], u.ID)
			if loadRoles[u.Group%len(loadRoles)] != "AnalystReadOnly" {
				changes++
			}
		}
	}
	for g, ids := range byGroup {
		for lo := 0; lo < len(ids); lo += c.Batch {
			batches = append(batches, batch{g, ids[lo:min(lo+c.Batch, len(ids))]})
		}
	}
	err = parallel(ctx, c.Concurrency, len(batches), func(ctx context.Context, i int) error {
		b := batches[i]
		values := make([]any, len(b.ids))
		for j, id := range b.ids {
			values[j] = map[string]any{"value": id}
		}
		_, _ = p.rec.call(ctx, d, "group patch", "PATCH", "/Groups/"+groupIDs[b.group], map[string]any{
			"schemas": []string{patchSchema}, "Operations": []any{map[string]any{"op": "add", "path": "members", "value": values}},
		}, http.StatusNoContent) // a group PATCH answers 204
		return ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	m.report.Phases = append(m.report.Phases, m.end(ctx, p, map[string]int{"updateUser": changes, "userById": changes}))
	m.groupIDs = groupIDs
	return users, nil
}

func (m *Main) runPoll(ctx context.Context, d *driver, imported []importedUser) error {
	c := m.Config
	type known struct{ userName, externalID string }
	var pool []known
	for _, u := range imported {
		if u.ID != "" {
			pool = append(pool, known{u.UserName, u.ExternalID})
		}
	}
	for n := range c.Prefill {
		pool = append(pool, known{bench.UserName(n), bench.ExternalID(n)})
	}
	if len(pool) == 0 {
		return errors.New("no known users to look up: run import first or give --prefill")
	}
	p := m.begin("poll")
	deadline := time.Now().Add(c.Duration)
	var wrong atomic.Int64
	err := parallel(ctx, c.Concurrency, c.Concurrency, func(ctx context.Context, w int) error {
		rng := rand.New(rand.NewPCG(uint64(w), 42))
		for i := 0; time.Now().Before(deadline); i++ {
			k := pool[rng.IntN(len(pool))]
			kind, q := "userName eq", fmt.Sprintf("userName eq %q", k.userName)
			if i%2 == 1 {
				kind, q = "externalId eq", fmt.Sprintf("externalId eq %q", k.externalID)
			}
			raw, err := p.rec.call(ctx, d, kind, "GET", "/Users?filter="+url.QueryEscape(q), nil, http.StatusOK)
			if err == nil && !bytes.Contains(raw, []byte(`"totalResults":1`)) {
				wrong.Add(1)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	ph := m.end(ctx, p, nil)
	if n := wrong.Load(); n > 0 {
		ph.FirstError = fmt.Sprintf("%d lookups did not find exactly one user", n)
		ph.Errors += int(n)
	}
	ph.IdealSeconds, ph.Ratio = 0, 0
	m.report.Phases = append(m.report.Phases, ph)
	if m.server != nil {
		m.report.MemoryAfterPoll = m.server.memory(ctx, m.client)
	}
	return nil
}

func (m *Main) runReorg(ctx context.Context, d *driver, imported []importedUser) error {
	c := m.Config
	if len(imported) == 0 || len(m.groupIDs) < 2 {
		return errors.New("reorg moves imported users between imported groups: run import with --groups 2 or more first")
	}
	type move struct{ from, to int }
	byMove := map[move][]string{}
	var order []move
	moved, demoted := 0, 0
	for _, u := range imported {
		if moved == c.Moves {
			break
		}
		if u.ID == "" {
			continue
		}
		to := u.Group + 1
		if to == len(m.groupIDs) {
			to = u.Group - 1
		}
		mv := move{u.Group, to}
		if _, ok := byMove[mv]; !ok {
			order = append(order, mv)
		}
		byMove[mv] = append(byMove[mv], u.ID)
		moved++
		if loadRoles[u.Group%len(loadRoles)] == "Admin" { // with --self's mapping
			demoted++
		}
	}
	type batch struct {
		mv  move
		ids []string
	}
	var batches []batch
	for _, mv := range order {
		ids := byMove[mv]
		for lo := 0; lo < len(ids); lo += c.Batch {
			batches = append(batches, batch{mv, ids[lo:min(lo+c.Batch, len(ids))]})
		}
	}
	p := m.begin("reorg")
	err := parallel(ctx, c.Concurrency, len(batches), func(ctx context.Context, i int) error {
		b := batches[i]
		add := make([]any, len(b.ids))
		remove := make([]any, len(b.ids))
		for j, id := range b.ids {
			add[j] = map[string]any{"value": id}
			// Okta removes members one operation each.
			remove[j] = map[string]any{"op": "remove", "path": fmt.Sprintf("members[value eq %q]", id)}
		}
		_, _ = p.rec.call(ctx, d, "group patch add", "PATCH", "/Groups/"+m.groupIDs[b.mv.to], map[string]any{
			"schemas": []string{patchSchema}, "Operations": []any{map[string]any{"op": "add", "path": "members", "value": add}},
		}, http.StatusNoContent)
		_, _ = p.rec.call(ctx, d, "group patch remove", "PATCH", "/Groups/"+m.groupIDs[b.mv.from], map[string]any{
			"schemas": []string{patchSchema}, "Operations": remove,
		}, http.StatusNoContent)
		return ctx.Err()
	})
	if err != nil {
		return err
	}
	// Every group maps to a role other than its neighbours', so each move changes the
	// user's role exactly once. An administrator moved out of Admin is checked not to be
	// the last one first: the check confirms another administrator with a userById
	// call, at most 4 of them (more than one when its memory is stale; a listing of
	// Panther's users after that).
	m.report.Phases = append(m.report.Phases, m.end(ctx, p, map[string]int{"updateUser": moved, "userById": moved + 4*demoted}))
	return nil
}

// writeCallsLog appends the phase's Panther calls to --calls-log, for offline study
// of how busy the Panther slots were.
func (m *Main) writeCallsLog(phase string, calls []pantherfake.Call) {
	f, err := os.OpenFile(m.Config.CallsLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	for _, c := range calls {
		_ = enc.Encode(map[string]any{"phase": phase, "op": c.Op, "atNs": c.Time.UnixNano(), "status": c.Status})
	}
}

// tenths returns the rate (per second) at which each tenth of the answers came, in
// order of answer: whether creating users slows down as the directory grows.
func tenths(start time.Time, at []time.Time) []float64 {
	at = slices.Clone(at)
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	n := len(at)
	if n < 10 {
		return nil
	}
	out := make([]float64, 10)
	prev := start
	for k := range 10 {
		lo, hi := k*n/10, (k+1)*n/10
		if d := at[hi-1].Sub(prev); d > 0 {
			out[k] = float64(hi-lo) / d.Seconds()
		}
		prev = at[hi-1]
	}
	return out
}
