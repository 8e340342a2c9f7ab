package scim

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/scim2/filter-parser/v2"

	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/internal/store"
)

func TestParseLookup(t *testing.T) {
	users := lookupAttrs["/Users"]
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{`userName eq "bjensen@example.com"`, true},
		{`USERNAME EQ "BJensen@Example.com"`, true},
		{`externalId eq "00u1"`, true},
		{`id eq "0190a000-0000-7000-8000-000000000001"`, true},
		{`  userName eq "a b c"  `, true},
		{`userName eq "Ünïcode"`, true},
		{`userName eq ""`, true},
		{`userName eq "a\"b"`, false}, // escapes go to the library
		{`userName eq "a\\b"`, false},
		{`userName  eq "x"`, false},
		{`userName eq  "x"`, false},
		{`userName ne "x"`, false},
		{`userName co "x"`, false},
		{`userName eq 12`, false},
		{`userName eq true`, false},
		{`userName eq "x" and active eq true`, false},
		{`userName eq "x" or userName eq "y"`, false},
		{`(userName eq "x")`, false},
		{`emails.value eq "x"`, false},
		{`displayName eq "x"`, false},
		{`name.familyName eq "x"`, false},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x"`, false},
		{`userName eq "x`, false},
		{`userName`, false},
		{``, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := parseLookup(tc.in, users)
			if ok != tc.want {
				t.Fatalf("parseLookup ok = %v, want %v", ok, tc.want)
			}
			if !ok {
				return
			}
			// elimity trims the filter before parsing it.
			want, err := filter.ParseFilter([]byte(strings.TrimSpace(tc.in)))
			if err != nil {
				t.Fatalf("the library's parser rejects what parseLookup accepts: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("parseLookup = %#v, ParseFilter = %#v", got, want)
			}
		})
	}
	if _, ok := parseLookup(`displayName eq "Eng"`, lookupAttrs["/Groups"]); !ok {
		t.Error("displayName eq is a group lookup")
	}
}

// TestLookupSameAnswer checks that a lookup answers exactly what the library's filter
// path answers for the same filter, with paging and projection parameters kept.
func TestLookupSameAnswer(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	err = st.Update(context.Background(), func(tx provision.Tx) error {
		for n := range 3 {
			u := provision.User{
				ID: fmt.Sprintf("0190a000-0000-7000-8000-%012d", n), UserName: fmt.Sprintf("User%d@example.com", n),
				ExternalID: "ext-shared", Active: true, Email: fmt.Sprintf("user%d@example.com", n),
				Attributes: map[string]any{"name": map[string]any{"givenName": "U", "familyName": fmt.Sprint(n)}},
				Created:    now, LastModified: now, Version: 1,
			}
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		return tx.PutGroup(provision.Group{ID: "0190a000-0000-7000-9000-000000000001", DisplayName: "Eng",
			Members: []string{"0190a000-0000-7000-8000-000000000001"}, Created: now, LastModified: now, Version: 1})
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHandler(provision.New(st, nil, provision.Options{}), StoreRecords(st), Options{BaseURL: "https://scim.example.com/scim/v2"})
	if err != nil {
		t.Fatal(err)
	}
	get := func(target string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
		return rec.Code, rec.Body.String()
	}
	for _, tc := range []struct{ path, filter, extra string }{
		{"/Users", `userName eq "USER1@EXAMPLE.COM"`, ""},
		{"/Users", `userName eq "nobody@example.com"`, ""},
		{"/Users", `externalId eq "ext-shared"`, "&startIndex=2&count=1"},
		{"/Users", `externalId eq "ext-shared"`, "&attributes=userName"},
		{"/Users", `id eq "0190a000-0000-7000-8000-000000000002"`, "&excludedAttributes=groups"},
		{"/Groups", `displayName eq "eng"`, "&excludedAttributes=members"},
		{"/Groups", `displayName eq "eng"`, ""},
	} {
		t.Run(tc.path+" "+tc.filter+tc.extra, func(t *testing.T) {
			if _, ok := parseLookup(tc.filter, lookupAttrs[tc.path]); !ok {
				t.Fatal("not a lookup")
			}
			fastCode, fast := get(tc.path + "?filter=" + url.QueryEscape(tc.filter) + tc.extra)
			// The same filter in parentheses is not a lookup: the library parses it.
			libCode, lib := get(tc.path + "?filter=" + url.QueryEscape("("+tc.filter+")") + tc.extra)
			if fastCode != 200 || fastCode != libCode || fast != lib {
				t.Fatalf("lookup answered %d %s\nthe library's path %d %s", fastCode, fast, libCode, lib)
			}
		})
	}
}
