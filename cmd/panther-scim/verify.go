package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/panther-scim/panther-scim/internal/app"
)

// cmdVerify checks a store file (the server stopped) or a running server's store
// (--url) for damage and inconsistency, prints what it found, and exits 1 unless the
// store is sound.
func cmdVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", os.Getenv("PANTHER_SCIM_CONFIG"), "config file (YAML); its store.path is checked")
	dataPath := fs.String("data", "", "the bbolt file to check (instead of --config); the server must be stopped")
	base := fs.String("url", "", "check a running server's store instead: its base URL (the ops listener's when server.opsAddr is set); admin token from $"+adminTokenEnv)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var rep app.VerifyReport
	if *base != "" {
		var err error
		if rep, err = adminAnswer[app.VerifyReport](ctx, http.MethodGet, *base, "verify", nil, "GET /admin/verify"); err != nil {
			return err
		}
	} else {
		st, _, err := openStoreFile(*cfgPath, *dataPath)
		if err != nil {
			// A file Open refuses (cut short, failing bbolt's check, empty) is the answer.
			fmt.Fprintf(stdout, "store: DAMAGED\n%v\n", err)
			return errSilent
		}
		defer st.Close()
		rep = app.Verify(ctx, st)
	}
	if *asJSON {
		_ = printJSON(stdout, rep)
	} else {
		printVerify(stdout, rep)
	}
	if !rep.OK {
		return errSilent
	}
	return nil
}

func printVerify(w io.Writer, rep app.VerifyReport) {
	fmt.Fprintf(w, "store %s: %d users, %d groups, %d pending intents read\n", rep.Path, rep.Users, rep.Groups, rep.Intents)
	if rep.DamagedPage != "" {
		fmt.Fprintf(w, "damaged page: %s\n", rep.DamagedPage)
	}
	if rep.DamagedCount > 0 {
		fmt.Fprintf(w, "records that do not decode (the server skips them): %d\n", rep.DamagedCount)
		for _, d := range rep.Damaged {
			fmt.Fprintf(w, "  %s\n", d)
		}
	}
	if len(rep.Problems) > 0 {
		fmt.Fprintf(w, "inconsistencies (the server refuses to start): %d\n", len(rep.Problems))
		for _, p := range rep.Problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
	}
	if rep.OK {
		fmt.Fprintln(w, "store: OK")
		return
	}
	if !rep.Complete && rep.DamagedPage == "" && len(rep.Problems) == 0 && rep.DamagedCount == 0 {
		fmt.Fprintln(w, "store: NOT CHECKED TO THE END")
		return
	}
	fmt.Fprintf(w, "store: DAMAGED\n%s\n", rep.Advice)
}
