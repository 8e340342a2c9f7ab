package e2e

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/panther-scim/panther-scim/internal/app"
)

// A store whose records and indexes disagree is refused at start with the steps to
// recover: here a byte of a user's plain header (outside the record's checksum) was
// changed, so the header, the record and the userName index no longer agree.
func TestStartRefusesInconsistentStore(t *testing.T) {
	e := newEnv(t)
	e.createUser("header@example.com", "He", "Ader")
	if err := e.App.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(e.storePath)
	if err != nil {
		t.Fatal(err)
	}
	// Every copy of the record's header: bbolt leaves older copies in freed pages,
	// and which one is live does not matter here.
	changed := 0
	for i := 0; ; i++ {
		j := bytes.Index(b[i:], []byte("header@example.com"))
		if j < 0 {
			break
		}
		i += j
		if bytes.Contains(b[i:i+40], []byte{0x28, 0xb5, 0x2f, 0xfd}) { // the record follows: its header
			b[i] = 'H'
			changed++
		}
	}
	if changed == 0 {
		t.Fatal("no record header for the user")
	}
	if err := os.WriteFile(e.storePath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	e.opts.Store = e.openStore()
	srv, err := app.Start(context.Background(), e.opts, nil)
	if err == nil {
		srv.Close()
		t.Fatal("an inconsistent store was served")
	}
	if !strings.Contains(err.Error(), "inconsistencies between records and indexes") || !strings.Contains(err.Error(), "To recover") {
		t.Errorf("start = %v", err)
	}
}

// The record check at start is bounded: out of time, the server starts and says the
// check was cut short.
func TestStartCheckBounded(t *testing.T) {
	e := newEnv(t, func(o *app.Options) { o.StoreCheckTimeout = time.Nanosecond })
	e.createUser("bounded@example.com", "Bo", "Unded")
	if !strings.Contains(e.Logs.String(), "stopped at its deadline") {
		t.Errorf("no word of the cut-short check:\n%s", e.Logs.String())
	}
}
