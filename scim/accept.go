package scim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"unicode"

	scimerrors "github.com/elimity-com/scim/errors"

	"github.com/panther-scim/panther-scim/scim/resource"
)

// What the edge accepts in the forms identity providers send it, before the library
// sees the request (README, "What panther-scim accepts"): resource paths in any case
// and with a trailing slash, bare filter values, URN-keyed core attributes, and
// attributes the schema does not declare (ignored and reported unless
// Options.StrictAttributes).

// StatusClientClosedRequest is the status logged for a request whose client hung up
// before the answer (nginx's 499): nobody reads it, but the access log and the request
// metrics tell it apart from a server error.
const StatusClientClosedRequest = 499

// endpoints are the resource paths, as the library matches them (exactly).
var endpoints = []string{"/Users", "/Groups", "/Schemas", "/ResourceTypes", "/ServiceProviderConfig", "/Bulk", "/Me"}

// canonicalPath returns the request path the library expects: its first segment
// spelled as the endpoint is (Microsoft's tools send /users), without a trailing slash
// (GET /Users/?filter=... is the list, not a lookup of the id "").
func canonicalPath(p string) string {
	for len(p) > 1 && strings.HasSuffix(p, "/") {
		p = p[:len(p)-1]
	}
	first, rest := p, ""
	if i := strings.IndexByte(p[min(1, len(p)):], '/'); i >= 0 {
		first, rest = p[:i+1], p[i+1:]
	}
	for _, e := range endpoints {
		if first != e && strings.EqualFold(first, e) {
			return e + rest
		}
	}
	return p
}

// canonicalizeRequestPath rewrites r's path to canonicalPath's. It returns the path.
func canonicalizeRequestPath(r *http.Request) string {
	p := canonicalPath(r.URL.Path)
	if p != r.URL.Path {
		u := *r.URL
		u.Path, u.RawPath = p, ""
		r.URL = &u
	}
	return p
}

// takeSearchFilter does takeFilter's work on a .search body of /Users or /Groups: its
// filter is parsed and checked here (the library's .search validation does not know
// the common attributes, meta.created among them), taken out of the body, and put in
// the request state. A body that does not decode, or without a filter, is returned
// unchanged for the library.
func takeSearchFilter(path string, body []byte, st *reqState) ([]byte, error) {
	base := strings.TrimSuffix(path, "/.search")
	attrs, ok := lookupAttrs[base]
	if !ok {
		return body, nil
	}
	var doc map[string]json.RawMessage
	if json.Unmarshal(body, &doc) != nil {
		return body, nil
	}
	for k, raw := range doc {
		var f string
		if !strings.EqualFold(k, "filter") || json.Unmarshal(raw, &f) != nil || strings.TrimSpace(f) == "" {
			continue
		}
		expr, err := checkedFilter(base, f, attrs)
		if err != nil {
			return nil, err
		}
		delete(doc, k)
		out, err := json.Marshal(doc)
		if err != nil {
			return body, nil
		}
		st.lookup = expr
		return out, nil
	}
	return body, nil
}

// resourceSchemaOf returns the schema of the resource a canonical path names.
func resourceSchemaOf(path string) (resource.Schema, bool) {
	switch {
	case path == "/Users" || strings.HasPrefix(path, "/Users/"):
		return resource.UserSchema, true
	case path == "/Groups" || strings.HasPrefix(path, "/Groups/"):
		return resource.GroupSchema, true
	}
	return resource.Schema{}, false
}

// normalizeBody prepares a POST, PUT or PATCH body of a User or Group for the
// library: URN-keyed attributes merged, Okta's and Entra's PATCH quirks rewritten
// (normalizePatchBody), attributes the schema does not declare taken out and
// reported, or refused when StrictAttributes is set. Other bodies are returned as
// they are.
func (h *handler) normalizeBody(r *http.Request, path string, body []byte) ([]byte, error) {
	rs, ok := resourceSchemaOf(path)
	if !ok || strings.HasSuffix(path, "/.search") {
		return body, nil
	}
	var t resource.Tolerated
	switch {
	case r.Method == http.MethodPatch:
		var err error
		if body, t, err = resource.NormalizePatchBody(rs, body); err != nil {
			return nil, err
		}
	case r.Method == http.MethodPost || r.Method == http.MethodPut:
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.UseNumber()
		var doc map[string]any
		if dec.Decode(&doc) != nil {
			return body, nil // checkBody has refused what is not an object
		}
		var err error
		if t, err = rs.NormalizeDocument(doc); err != nil {
			return nil, err
		}
		if out, err := json.Marshal(doc); err == nil {
			body = out
		}
	default:
		return body, nil
	}
	if len(t.Unknown) == 0 {
		return body, nil
	}
	if h.opts.StrictAttributes {
		scimType := scimerrors.ScimTypeInvalidSyntax
		if r.Method == http.MethodPatch {
			scimType = scimerrors.ScimTypeInvalidPath
		}
		return nil, resource.BadRequest(scimType, "%s: the %s schema does not declare %s (scim.strictAttributes is on; turn it off to ignore unknown attributes)",
			unknownList(t.Unknown), rs.Core.Name.Value(), pluralIt(len(t.Unknown)))
	}
	h.unknown.report(r.Context(), rs.Core.Name.Value(), r.Method, t.Unknown)
	return body, nil
}

func unknownList(names []string) string {
	const show = 5
	quoted := make([]string, 0, show)
	for _, n := range names[:min(len(names), show)] {
		quoted = append(quoted, fmt.Sprintf("%q", n))
	}
	s := "unknown attribute " + quoted[0]
	if len(names) > 1 {
		s = "unknown attributes " + strings.Join(quoted, ", ")
	}
	if len(names) > show {
		s += fmt.Sprintf(" and %d more", len(names)-show)
	}
	return s
}

func pluralIt(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

// Bounds of what unknown-attribute reporting remembers: attribute names are chosen by
// the client, so neither the metric's series nor the memory of names already logged
// may grow without end.
const (
	// maxUnknownLabels is the most attribute names the metric carries as labels;
	// further ones are counted under "other".
	maxUnknownLabels = 100
	// maxUnknownLogged is the most attribute names logged (each once); further ones
	// are counted without a log line, after one line saying so.
	maxUnknownLogged = 1000
	// maxUnknownLabelLen is the longest name used as a label, in bytes.
	maxUnknownLabelLen = 256
)

// UnknownOther is the metric label of the unknown attributes counted together.
const UnknownOther = "other"

// unknownReporter logs each unknown attribute name once at warn and counts every
// occurrence by name (bounded, see the limits above).
type unknownReporter struct {
	log   *slog.Logger
	count func(attribute string)

	mu       sync.Mutex
	logged   map[string]bool   // folded name: logged already
	labels   map[string]string // folded name: its label
	overflow bool              // the "no more logged" line was written
}

func newUnknownReporter(log *slog.Logger, count func(string)) *unknownReporter {
	if count == nil {
		count = func(string) {}
	}
	return &unknownReporter{log: log, count: count, logged: map[string]bool{}, labels: map[string]string{}}
}

func (u *unknownReporter) report(ctx context.Context, resource, method string, names []string) {
	for _, name := range names {
		label, logIt, overflow := u.note(name)
		u.count(label)
		if logIt {
			u.log.WarnContext(ctx, "ignored an attribute the schema does not declare: fix the identity provider's attribute mapping (logged once per attribute)",
				"attribute", name, "resource", resource, "method", method)
		}
		if overflow {
			u.log.WarnContext(ctx, fmt.Sprintf("more than %d distinct unknown attribute names: further ones are counted but not logged", maxUnknownLogged))
		}
	}
}

// note records one occurrence of name: its label, whether to log it, and whether the
// logging limit was just reached.
func (u *unknownReporter) note(name string) (label string, logIt, overflow bool) {
	key := strings.ToLower(name)
	u.mu.Lock()
	defer u.mu.Unlock()
	label, ok := u.labels[key]
	if !ok {
		label = UnknownOther
		if len(u.labels) < maxUnknownLabels && labelable(name) {
			label = name
			u.labels[key] = label
		}
	}
	switch {
	case u.logged[key]:
	case len(u.logged) < maxUnknownLogged:
		u.logged[key], logIt = true, true
	case !u.overflow:
		u.overflow, overflow = true, true
	}
	return label, logIt, overflow
}

// labelable reports whether a name may be a metric label: short and printable.
func labelable(name string) bool {
	return name != "" && name != UnknownOther && len(name) <= maxUnknownLabelLen &&
		strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) < 0
}

// detachChange returns r with a context that its client's hang-up does not cancel
// when r asks for a change (POST other than .search, PUT, PATCH, DELETE): the change
// is then applied, or queued, exactly as if the client had stayed, within the same
// bounds (provisioning.requestSyncTimeout for Panther), instead of being cut off
// between the store and Panther. Reads keep the client's context: a long scan stops
// when nobody waits for it. The moment the client goes is logged at debug; call done
// when the request is served.
func (h *handler) detachChange(r *http.Request) (_ *http.Request, done func()) {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return r, func() {}
	}
	if strings.HasSuffix(r.URL.Path, "/.search") {
		return r, func() {}
	}
	ctx, method, path := r.Context(), r.Method, r.URL.Path
	stop := context.AfterFunc(ctx, func() {
		if errors.Is(ctx.Err(), context.Canceled) {
			h.log.DebugContext(context.WithoutCancel(ctx), "the client closed the connection; the change it asked for goes on",
				"method", method, "path", path)
		}
	})
	return r.WithContext(context.WithoutCancel(ctx)), func() { stop() }
}

// clientGone ends a request whose client hung up before the answer: nobody reads
// it, so it is logged at info with status 499 (StatusClientClosedRequest), which the
// access log and the request metrics see too, never as a server error. status and err
// are what the client would have been answered.
func (h *handler) clientGone(w http.ResponseWriter, r *http.Request, status int, err error) {
	attrs := []any{"status", StatusClientClosedRequest, "method", r.Method, "path", r.URL.Path}
	if err != nil {
		attrs = append(attrs, "err", err)
	} else {
		attrs = append(attrs, "answer", status)
	}
	h.log.InfoContext(r.Context(), "the client closed the connection before the answer", attrs...)
	w.WriteHeader(StatusClientClosedRequest)
}
