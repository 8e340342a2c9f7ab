// Command panther-scim is a SCIM 2.0 server that provisions Okta and Microsoft Entra ID
// users into Panther. Run `panther-scim help` for the subcommands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `panther-scim: provision Okta / Entra ID users into Panther over SCIM 2.0

Usage: panther-scim <command> [flags]

Commands:
  serve         run the SCIM server (--config FILE)
  demo          run the whole product on this machine against an in-memory Panther
  check         validate a config, and check Panther's schema, the API token and the roles; exit 0 or 1
  reconcile     compare the store with Panther and repair drift (--dry-run: print the plan)
  explain       say why a user has the Panther role they have (USER: SCIM id, userName or email)
  token         generate a SCIM bearer token (--admin: an admin token) and print its hash
  backup        write a consistent copy of the store (--out FILE)
  audit         print the audit trail (--since, --user)
  verify        check the store for damage and inconsistency; exit 0 or 1
  healthcheck   exit 0 when the server's /healthz answers (for container health checks)
  fake-panther  serve the in-memory Panther double on a port, for demos and curl
  version       print the version

explain, audit, reconcile, backup and verify read a stopped server's store (--config), or ask a
running one with --url BASE and an admin token in $PANTHER_SCIM_ADMIN_TOKEN.

Run "panther-scim <command> -h" for the flags of a command.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) && !errors.Is(err, errSilent) {
			fmt.Fprintln(os.Stderr, "panther-scim:", err)
		}
		os.Exit(1)
	}
}

// errSilent is returned by commands that already printed why they failed.
var errSilent = errors.New("failed")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errSilent
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, rest, stdout, stderr)
	case "demo":
		return cmdDemo(ctx, rest, stdout, stderr)
	case "check":
		return cmdCheck(ctx, rest, stdout, stderr)
	case "reconcile":
		return cmdReconcile(ctx, rest, stdout, stderr)
	case "explain":
		return cmdExplain(ctx, rest, stdout, stderr)
	case "token":
		return cmdToken(rest, stdout)
	case "backup":
		return cmdBackup(ctx, rest, stdout, stderr)
	case "audit":
		return cmdAudit(ctx, rest, stdout, stderr)
	case "verify":
		return cmdVerify(ctx, rest, stdout, stderr)
	case "healthcheck":
		return cmdHealthcheck(ctx, rest, stdout, stderr)
	case "fake-panther":
		return cmdFakePanther(ctx, rest, stdout)
	case "version", "--version":
		fmt.Fprintln(stdout, "panther-scim", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "unknown command %q\n\n%s", cmd, usage)
	return errSilent
}
