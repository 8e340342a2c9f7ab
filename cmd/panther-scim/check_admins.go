package main

import (
	"context"
	"fmt"
	"io"

	"github.com/panther-scim/panther-scim/internal/config"
	"github.com/panther-scim/panther-scim/internal/provision"
)

// warnUnprotectedAdmins prints a warning for each Panther user whose role holds
// UserModify and whose email is not on provisioning.protectedEmails: an IdP user with
// the same email could be linked to it (under provisioning.adopt: all), or the IdP's
// changes could reach it. It returns how many it found; listing the users failing is a
// warning too, as check's other steps say what is wrong with the token.
func warnUnprotectedAdmins(ctx context.Context, p interface {
	Users(context.Context) ([]provision.PantherUser, error)
}, cfg config.Config, w io.Writer) int {
	users, err := p.Users(ctx)
	if err != nil {
		fmt.Fprintf(w, "warning: could not list Panther users to find unprotected administrators: %v\n", err)
		return 0
	}
	protected := map[string]bool{}
	for _, e := range cfg.Provisioning.ProtectedEmails {
		protected[provision.EmailKey(e)] = true
	}
	n := 0
	for _, u := range users {
		if !u.Admin || protected[provision.EmailKey(u.Email)] {
			continue
		}
		n++
		state := ""
		if !u.Enabled {
			state = ", disabled"
		}
		fmt.Fprintf(w, "warning: Panther user %s (role %s%s) holds UserModify and is not in provisioning.protectedEmails: "+
			"add it there if the IdP does not manage it (provisioning.adopt is %s)\n", u.Email, u.RoleName, state, cfg.Provisioning.Adopt)
	}
	return n
}
