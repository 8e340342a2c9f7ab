package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"
)

// TestMain lets the test binary be the server child too, as the scim-load binary is.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == childCommand {
		if err := runChild(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSelfSmall runs every scenario against a tiny self-started setup and checks the
// report: no errors, the expected Panther calls and none more.
func TestSelfSmall(t *testing.T) {
	var out bytes.Buffer
	m := &Main{Out: &out}
	err := m.ParseFlags([]string{"--self", "--prefill", "200", "--users", "30", "--groups", "3", "--batch", "7",
		"--concurrency", "4", "--duration", "300ms", "--panther-latency", "1ms", "--scenarios", "import,poll,reorg,calibrate",
		"--json", "--timeout", "2m"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = m.Run(ctx)
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	var r Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("report: %v\n%s", err, out.String())
	}
	if r.Startup == nil || r.Startup.StoreUsers != 200 || r.Prefill == nil {
		t.Errorf("no start-up or prefill figures: %+v %+v", r.Startup, r.Prefill)
	}
	names := map[string]Phase{}
	for _, p := range r.Phases {
		names[p.Name] = p
		if p.Errors > 0 || p.UnexpectedCalls > 0 {
			t.Errorf("%s: %d errors (%s), %d unexpected calls", p.Name, p.Errors, p.FirstError, p.UnexpectedCalls)
		}
	}
	for name, want := range map[string]map[string]int{
		"import users":  {"inviteUser": 30},
		"import groups": {"updateUser": 20}, // groups 0 and 1 map to Admin and Analyst; 2 to the default
		"reorg":         {"updateUser": 30},
		"calibrate":     {"updateUser": 1000},
	} {
		p, ok := names[name]
		if !ok {
			t.Errorf("no phase %q", name)
			continue
		}
		for op, n := range want {
			if p.PantherCalls[op] != n {
				t.Errorf("%s: %d %s calls, want %d (all: %v)", name, p.PantherCalls[op], op, n, p.PantherCalls)
			}
		}
		if p.Ratio <= 0 {
			t.Errorf("%s: no ratio", name)
		}
	}
	if p := names["poll"]; p.Requests == 0 {
		t.Error("poll made no requests")
	}
}
