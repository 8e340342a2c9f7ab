package main

// Damaged store files on the real binary: serve refuses them with a clear message
// and the steps to recover, or serves them with the bad record reported; never a
// panic. verify says the same offline and online.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/panther-scim/panther-scim/internal/auth"
	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/internal/store"
)

const damagedVictim = "victim-0025@example.com"

// writeStoreFixture writes a store of 50 users (user 25 is the victim) at path.
func writeStoreFixture(t *testing.T, path string) {
	t.Helper()
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(context.Background(), func(tx provision.Tx) error {
		for n := range 50 {
			email := fmt.Sprintf("user%02d@example.com", n)
			if n == 25 {
				email = damagedVictim
			}
			u := provision.User{ID: fmt.Sprintf("0190c2a0-0000-7000-8000-0000000000%02d", n), UserName: email, Email: email,
				Active: true, Version: 1, Attributes: map[string]any{
					"name":   map[string]any{"givenName": fmt.Sprintf("Given%d", n), "familyName": "Family"},
					"emails": []any{map[string]any{"value": email, "primary": true}},
				}}
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

// victimRecord is where the victim's record starts in the file: the copy of its
// userName that a compressed record (a zstd frame) follows.
func victimRecord(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte(damagedVictim))
		if j < 0 {
			t.Fatal("no record of the victim in the file")
		}
		end := i + j + len(damagedVictim)
		if bytes.Contains(b[end:end+16], []byte{0x28, 0xb5, 0x2f, 0xfd}) {
			return int64(i + j)
		}
		i = end
	}
}

func patchFile(t *testing.T, path string, off int64, fn func([]byte)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fn(b[off:])
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func testDamagedStores(t *testing.T, bin string) {
	const key = "damage-panther-key-0123456789"
	scimTok, _ := auth.GenerateToken()
	adminTok, _ := auth.GenerateToken()
	env := cleanEnv("PANTHER_API_TOKEN="+key, "PANTHER_SCIM_BEARER_TOKENS="+scimTok, "PANTHER_SCIM_ADMIN_TOKENS="+adminTok)
	pantherURL := startFakePanther(t, bin, key)

	// setup writes a config and a damaged store for it; the store is at cfg's
	// store.path (dir/name.db).
	setup := func(t *testing.T, damage func(t *testing.T, path string)) (cfg, db string) {
		dir := t.TempDir()
		cfg = writeConfig(t, dir, "damage", pantherURL, "")
		db = filepath.Join(dir, "damage.db")
		writeStoreFixture(t, db)
		damage(t, db)
		return cfg, db
	}
	noTrace := func(t *testing.T, out string) {
		t.Helper()
		// A Go crash: "panic: ..." or "fatal error: ..." at the start of a line, then the
		// goroutines' stacks.
		for _, s := range []string{"\npanic: ", "\nfatal error: ", "goroutine ", "runtime.", "SIGBUS", "SIGSEGV"} {
			if strings.Contains("\n"+out, s) {
				t.Errorf("output has %q:\n%s", s, out)
			}
		}
	}

	refusals := []struct {
		name   string
		damage func(t *testing.T, path string)
		says   string
	}{
		{"page overwritten", func(t *testing.T, p string) {
			patchFile(t, p, victimRecord(t, p)/4096*4096, func(b []byte) {
				r := rand.New(rand.NewPCG(3, 4))
				for i := range 4096 {
					b[i] = byte(r.Uint32())
				}
			})
		}, "consistency check"},
		{"truncated", func(t *testing.T, p string) {
			fi, _ := os.Stat(p)
			if err := os.Truncate(p, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
		}, "cut short"},
		{"empty", func(t *testing.T, p string) {
			if err := os.Truncate(p, 0); err != nil {
				t.Fatal(err)
			}
		}, "serve --init"},
	}
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			cfg, db := setup(t, c.damage)
			r := runBin(t, bin, env, "serve", "--config", cfg)
			if r.Code != 1 || !strings.Contains(r.Stderr, c.says) || !strings.Contains(r.Stderr, "To recover") {
				t.Errorf("serve on a damaged store: exit %d\n%s", r.Code, r.Stderr)
			}
			noTrace(t, r.Stderr)
			v := runBin(t, bin, env, "verify", "--data", db)
			if v.Code != 1 || !strings.Contains(v.Stdout, "store: DAMAGED") || !strings.Contains(v.Stdout, c.says) {
				t.Errorf("verify: exit %d\n%s%s", v.Code, v.Stdout, v.Stderr)
			}
			noTrace(t, v.Stdout+v.Stderr)
		})
	}

	t.Run("empty with --init", func(t *testing.T) {
		cfg, _ := setup(t, refusals[2].damage)
		s := startServeArgs(t, bin, env, "serve", "--init", "--config", cfg)
		if code, body := get(t, s.Ops+"/readyz"); code != http.StatusOK {
			t.Errorf("readyz after --init: %d %s", code, body)
		}
	})

	t.Run("bytes flipped in a record", func(t *testing.T) {
		cfg, db := setup(t, func(t *testing.T, p string) {
			patchFile(t, p, victimRecord(t, p)+int64(len(damagedVictim))+24, func(b []byte) {
				for i := range 8 {
					b[i] ^= 0xa5
				}
			})
		})
		s := startServeArgs(t, bin, env, "serve", "--config", cfg)
		code, body := get(t, s.Ops+"/readyz")
		var ready struct {
			Store struct {
				DamagedRecords    int
				LastDamagedRecord string
			}
		}
		_ = json.Unmarshal([]byte(body), &ready)
		if code != http.StatusOK || ready.Store.DamagedRecords != 1 || !strings.Contains(ready.Store.LastDamagedRecord, "0190c2a0-0000-7000-8000-000000000025") {
			t.Errorf("readyz with a damaged record: %d %s", code, body)
		}
		if _, m := get(t, s.Ops+"/metrics"); !strings.Contains(m, "\npanther_scim_store_decode_errors_total 1\n") {
			t.Errorf("metrics: %s", grepLines(m, "decode"))
		}
		bearer := []string{"Authorization", "Bearer " + scimTok}
		var list struct{ TotalResults, ItemsPerPage int }
		if code := call(t, "GET", s.SCIM+"/Users?count=100", bearer, nil, &list); code != http.StatusOK || list.ItemsPerPage != 49 {
			t.Errorf("list with a damaged record: %d %+v", code, list)
		}
		if code, body := get(t, s.SCIM+"/Users/0190c2a0-0000-7000-8000-000000000025", bearer...); code != http.StatusInternalServerError {
			t.Errorf("GET the damaged user: %d %s", code, body)
		}
		// Online verify reports it.
		admin := append(cleanEnv(adminTokenEnv+"="+adminTok), "PANTHER_SCIM_CONFIG=")
		v := runBin(t, bin, admin, "verify", "--url", s.Ops)
		if v.Code != 1 || !strings.Contains(v.Stdout, "records that do not decode (the server skips them): 1") {
			t.Errorf("verify --url: exit %d\n%s%s", v.Code, v.Stdout, v.Stderr)
		}
		if n := strings.Count(s.stderr.String(), "store record does not decode"); n != 1 {
			t.Errorf("the damaged record was logged %d times, want once:\n%s", n, s.stderr)
		}
		// The mapping requeue at start (the fixture's users are not in Panther yet) goes
		// past the damaged record instead of failing on it and retrying for ever.
		poll(t, "the requeue of the other users", func() bool {
			return strings.Contains(s.stderr.String(), `"msg":"users queued for the current mapping","users":49`)
		})
		if strings.Contains(s.stderr.String(), "could not compare users with the current mapping") {
			t.Errorf("the requeue failed:\n%s", s.stderr)
		}
		noTrace(t, s.stderr.String())
		s.stop(t)
		v = runBin(t, bin, env, "verify", "--data", db)
		if v.Code != 1 || !strings.Contains(v.Stdout, "0190c2a0-0000-7000-8000-000000000025") || !strings.Contains(v.Stdout, "store: DAMAGED") {
			t.Errorf("verify --data: exit %d\n%s%s", v.Code, v.Stdout, v.Stderr)
		}
	})

	t.Run("sound store", func(t *testing.T) {
		_, db := setup(t, func(*testing.T, string) {})
		if v := runBin(t, bin, env, "verify", "--data", db); v.Code != 0 || !strings.Contains(v.Stdout, "50 users") || !strings.Contains(v.Stdout, "store: OK") {
			t.Errorf("verify of a sound store: exit %d\n%s%s", v.Code, v.Stdout, v.Stderr)
		}
	})
}
