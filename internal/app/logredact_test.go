package app

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestRedactEmails(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(RedactEmails(slog.NewJSONHandler(&buf, nil))).With("who", "Ada.Lovelace+scim@Example.co.uk")
	log.Warn("x",
		"err", fmt.Errorf("invite: %w", errors.New(`panther: user "ada@example.com" already exists`)),
		"plain", "no address here: a@b and @handle",
		"list", []string{"bob@example.org"},
		slog.Group("g", "mail", "carol@example.net"))
	out := buf.String()
	for _, email := range []string{"ada@example.com", "Ada.Lovelace+scim@Example.co.uk", "bob@example.org", "carol@example.net"} {
		if strings.Contains(out, email) {
			t.Errorf("%s not redacted: %s", email, out)
		}
	}
	// The same address, in any case, gets the same tag.
	if redactText("ADA@example.com") != redactText("ada@example.com") || !strings.Contains(out, redactText("ada@example.com")) {
		t.Errorf("tags: %s", out)
	}
	if !strings.Contains(out, "no address here: a@b and @handle") {
		t.Errorf("text without an address changed: %s", out)
	}
}
