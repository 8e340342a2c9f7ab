// Command scim-load drives a panther-scim server over HTTP as an identity provider
// does, and reports throughput, latency percentiles and, against the Panther double,
// how close the bridge comes to the time Panther's latency alone imposes.
//
// Scenarios (--scenarios, comma-separated, run in this order):
//
//	import  Okta-style import: --users users, each looked up (userName eq) and
//	        POSTed by --concurrency clients; then --groups groups created empty and
//	        filled by PATCH batches of --batch members (Group Push).
//	poll    Entra-style steady polling for --duration: userName eq and externalId eq
//	        lookups of random known users by --concurrency clients.
//	reorg   a reorganisation: --moves imported users moved each from its group to a
//	        neighbour mapped to another role (PATCH add to the new group, then PATCH
//	        remove from the old one, in batches of --batch).
//	calibrate  (--self) the same Panther client as the bridge's, driven directly
//	        with updateUser calls: the ratio to the ideal that the double, the HTTP
//	        exchange and this machine cost without any bridge work.
//
// With --self, scim-load starts everything on loopback: the Panther double (this
// process) with --panther-latency, and panther-scim (a child process, so that its
// memory is its own) on a store in a temporary directory, pre-filled with --prefill
// users written straight through the store, with a Panther client limited to
// --panther-concurrency requests in flight. It then counts Panther calls at the double
// and prints, for the write scenarios, measured / ideal where ideal = calls x latency /
// concurrency, and the server's start-up time, heap and RSS. Without --self it drives
// --url with --token (or $SCIM_TOKEN) and reports throughput and latency only.
//
//	go run ./cmd/scim-load --self --prefill 100000 --users 10000 --groups 30 \
//	    --concurrency 16 --panther-latency 20ms --panther-concurrency 8
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	if ran, err := runSubcommand(os.Args[1:]); ran {
		if err != nil {
			fmt.Fprintln(os.Stderr, "scim-load:", err)
			os.Exit(1)
		}
		return
	}
	// The load generator shares the machine with the server it measures: spend as
	// little CPU on garbage collection as the server does.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := NewMain()
	if err := m.ParseFlags(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	err := m.Run(ctx)
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "scim-load:", err)
		os.Exit(1)
	}
}

// runSubcommand runs the server child, the lookup probe or the control server when
// args name one, and says whether it did.
func runSubcommand(args []string) (bool, error) {
	if len(args) == 0 {
		return false, nil
	}
	switch args[0] {
	case childCommand:
		return true, runChild(args[1:])
	case probeCommand:
		return true, runProbe(args[1:])
	case echoCommand:
		return true, runEcho()
	}
	return false, nil
}
