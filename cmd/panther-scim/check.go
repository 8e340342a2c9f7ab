package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/panther-scim/panther-scim/internal/panther"
)

// checkPanther runs the online part of `check` before the role checks: Panther's schema
// against every operation the client sends, then the API token (it reads users and roles).
// It prints one line per finding (a line per problem after "schema: INCOMPATIBLE") and
// reports whether the rest of check can go on and whether everything passed. It never calls
// a mutation.
func checkPanther(ctx context.Context, client *panther.Client, out io.Writer) (tokenOK, ok bool) {
	ok = true
	incompatible := false
	comp, err := client.CheckSchema(ctx)
	switch {
	case err == nil && len(comp.Problems) == 0:
		fmt.Fprintf(out, "schema: ok (%d operations valid against Panther's schema)\n", comp.Operations)
	case err == nil:
		fmt.Fprintln(out, "schema: INCOMPATIBLE")
		for _, p := range comp.Problems {
			fmt.Fprintf(out, "  %s\n", p)
		}
		incompatible, ok = true, false
	case errors.Is(err, panther.ErrIntrospectionRefused):
		fmt.Fprintf(out, "schema: not verified: Panther refused the introspection query (%s); trying the read-only operations (users, roles) instead\n",
			pantherSaid(err))
	default:
		fmt.Fprintf(out, "schema: not checked: %v\n", err)
		ok = false
	}

	users, uerr := client.Users(ctx)
	roles, rerr := client.Roles(ctx)
	if uerr == nil && rerr == nil {
		fmt.Fprintf(out, "token: ok (read %d users and %d roles; inviting, updating and deleting users also needs "+
			"Panther's Manage Users permission, which check cannot try without changing Panther)\n", len(users), len(roles))
		return true, ok
	}
	for _, e := range []error{uerr, rerr} {
		if e == nil {
			continue
		}
		var pe *panther.Error
		errors.As(e, &pe)
		switch {
		case errors.Is(e, panther.ErrUnauthorized) && pe != nil && pe.StatusCode == http.StatusUnauthorized:
			fmt.Fprintln(out, "token: REJECTED: Panther refused the API key (HTTP 401); put a current Panther API token where panther.tokenEnv or panther.tokenFile points")
			return false, false
		case errors.Is(e, panther.ErrUnauthorized) && pe != nil:
			fmt.Fprintf(out, "token: MISSING PERMISSION: the API token may not run %s; give it Panther's %s permission (and Manage Users) (Panther said: %s)\n",
				pe.Op, panther.Permission(pe.Op), pe.Message)
		case errors.Is(e, panther.ErrInvalid) || (pe != nil && pe.Kind == nil):
			// Panther answered, and refused the query itself: what introspection would have shown.
			if !incompatible {
				fmt.Fprintln(out, "schema: INCOMPATIBLE")
				incompatible = true
			}
			fmt.Fprintf(out, "  %s: Panther refused the query: %s\n", opOf(pe), pantherSaid(e))
		default:
			fmt.Fprintf(out, "panther: %v\n", e)
		}
	}
	return false, false
}

func opOf(e *panther.Error) string {
	if e == nil {
		return "?"
	}
	return e.Op
}

// pantherSaid is Panther's own message in err, else err's text.
func pantherSaid(err error) string {
	var pe *panther.Error
	if errors.As(err, &pe) && pe.Message != "" {
		return strings.TrimSpace(pe.Message)
	}
	return err.Error()
}
