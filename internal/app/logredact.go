package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
)

// emailPattern finds what looks like an email address in log text: Panther's error
// messages quote the addresses they are about, and so do some of ours.
var emailPattern = regexp.MustCompile("[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)+")

// RedactEmails returns a handler that replaces every email address in the attribute
// values of the records it passes on (strings, errors, anything that prints with an
// "@") with "[email " + the first 12 hex digits of the SHA-256 of the lower-cased
// address + "]": logs then hold no address, yet lines about one person still match,
// and an operator who knows an address can compute its tag
// (printf %s ada@example.com | sha256sum).
func RedactEmails(h slog.Handler) slog.Handler {
	if _, ok := h.(redactingHandler); ok {
		return h
	}
	return redactingHandler{h}
}

type redactingHandler struct{ slog.Handler }

func (h redactingHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return h.Handler.Handle(ctx, out)
}

func (h redactingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = redactAttr(a)
	}
	return redactingHandler{h.Handler.WithAttrs(red)}
}

func (h redactingHandler) WithGroup(name string) slog.Handler {
	return redactingHandler{h.Handler.WithGroup(name)}
}

func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		if s := v.String(); strings.IndexByte(s, '@') >= 0 {
			return slog.String(a.Key, redactText(s))
		}
	case slog.KindGroup:
		as := v.Group()
		red := make([]slog.Attr, len(as))
		for i, g := range as {
			red[i] = redactAttr(g)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(red...)}
	case slog.KindAny:
		var s string
		if err, ok := v.Any().(error); ok {
			s = err.Error()
		} else {
			s = fmt.Sprint(v.Any())
		}
		if strings.IndexByte(s, '@') >= 0 {
			return slog.String(a.Key, redactText(s))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// redactText replaces the email addresses in s with their tags.
func redactText(s string) string {
	return emailPattern.ReplaceAllStringFunc(s, func(email string) string {
		sum := sha256.Sum256([]byte(strings.ToLower(email)))
		return "[email " + hex.EncodeToString(sum[:6]) + "]"
	})
}
