package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/internal/store"
)

func TestAuditCommandFilters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	entries := []provision.AuditEntry{
		{Time: now.Add(-72 * time.Hour), Action: "user.create", Resource: "User", ID: "u-old", After: map[string]string{"userName": "old@example.com"}, Outcome: "accepted"},
		{Time: now.Add(-time.Minute), Action: "user.create", Resource: "User", ID: "u-new", After: map[string]string{"userName": "new@example.com", "email": "new@example.com"}, Outcome: "accepted"},
		{Time: now.Add(-30 * time.Second), Action: "user.deactivate", Resource: "User", ID: "u-other", Before: map[string]string{"userName": "other@example.com"}, Outcome: "accepted"},
	}
	if err := st.Update(context.Background(), func(tx provision.Tx) error {
		for _, e := range entries {
			if err := tx.AppendAudit(e); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		args      []string
		want, not []string
	}{
		{"all", nil, []string{"u-old", "u-new", "u-other"}, nil},
		{"since", []string{"--since", "1h"}, []string{"u-new", "u-other"}, []string{"u-old"}},
		{"user by userName", []string{"--user", "NEW@example.com"}, []string{"u-new"}, []string{"u-old", "u-other"}},
		{"user by id and since", []string{"--user", "u-old", "--since", "1h"}, nil, []string{"u-old", "u-new", "u-other"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append([]string{"audit", "--data", path}, c.args...)
			if err := run(context.Background(), args, &out, &errb); err != nil {
				t.Fatalf("audit: %v (%s)", err, errb.String())
			}
			for _, w := range c.want {
				if !strings.Contains(out.String(), `"id":"`+w+`"`) {
					t.Errorf("missing %s in:\n%s", w, out.String())
				}
			}
			for _, n := range c.not {
				if strings.Contains(out.String(), `"id":"`+n+`"`) {
					t.Errorf("unexpected %s in:\n%s", n, out.String())
				}
			}
		})
	}
}
