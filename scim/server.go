package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	elimity "github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"
	"github.com/scim2/filter-parser/v2"

	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/scim/resource"
)

// Prefix is where the SCIM API is mounted.
const Prefix = "/scim/v2"

// Options configure the SCIM handler.
type Options struct {
	// BaseURL is the external URL of the SCIM API (ending in /scim/v2), used for
	// Location, meta.location and $ref. Required: it is never derived from a
	// request's Host or X-Forwarded-* headers, which the client controls.
	BaseURL string
	// MaxBodyBytes caps request bodies (default 1 MiB).
	MaxBodyBytes int64
	// MaxResults caps a list page (default 1000).
	MaxResults int
	Logger     *slog.Logger
	// StrictAttributes refuses (400) a POST, PUT or PATCH naming an attribute the
	// schema does not declare, instead of ignoring it (scim.strictAttributes).
	StrictAttributes bool
	// UnknownAttribute, when set, is called for each attribute ignored because the
	// schema does not declare it, with the metric label to count it under: its name,
	// or UnknownOther past a bounded number of distinct names.
	UnknownAttribute func(label string)
}

var allowStringValues sync.Once

// NewHandler returns the SCIM API: writes go to svc (provision.Service), lists and
// the references responses show are read from records (StoreRecords). Mount it under
// Prefix with the prefix stripped (paths it sees are /Users, /Groups, ...).
func NewHandler(svc Service, records Records, opts Options) (http.Handler, error) {
	// Entra sends booleans as strings ("False"); without this they are 400s before
	// our code runs. It is a package-global switch of the library, set once.
	allowStringValues.Do(func() { schema.SetAllowStringValues(true) })
	if opts.BaseURL == "" {
		return nil, errors.New("scim: BaseURL is required")
	}
	opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.MaxResults <= 0 {
		opts.MaxResults = 1000
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{svc: svc, records: records, opts: opts, log: opts.Logger, unknown: newUnknownReporter(opts.Logger, opts.UnknownAttribute)}
	srv, err := elimity.NewServer(&elimity.ServerArgs{
		ServiceProviderConfig: &elimity.ServiceProviderConfig{MaxResults: opts.MaxResults, SupportFiltering: true, SupportPatch: true},
		ResourceTypes: []elimity.ResourceType{
			{
				ID: optional.NewString("User"), Name: "User", Endpoint: "/Users",
				Description: optional.NewString("User Account"),
				Schema:      resource.UserSchema.Core,
				SchemaExtensions: []elimity.SchemaExtension{
					{Schema: schema.ExtensionEnterpriseUser()},
				},
				Handler: resourceHandler[provision.User, provision.UserFields]{h, users},
			},
			{
				ID: optional.NewString("Group"), Name: "Group", Endpoint: "/Groups",
				Description: optional.NewString("Group"),
				Schema:      resource.GroupSchema.Core,
				Handler:     resourceHandler[provision.Group, provision.GroupFields]{h, groups},
			},
		},
	})
	if err != nil {
		return nil, err
	}
	h.lib = srv
	return h, nil
}

type handler struct {
	svc     Service
	records Records
	opts    Options
	log     *slog.Logger
	lib     elimity.Server
	unknown *unknownReporter
}

// reqState carries what our resource handlers decide past the library, which only
// knows its own error type and statuses: the real error, and the projection.
type reqState struct {
	err      error
	attrs    []string
	excluded []string
	base     string
	// lookup is the filter takeFilter or takeSearchFilter parsed in place of the
	// library, if any.
	lookup filter.Expression
	// etag is the ETag of an answer without a body (a group PATCH's 204).
	etag string
}

type stateKey struct{}

func state(r *http.Request) *reqState {
	st, _ := r.Context().Value(stateKey{}).(*reqState)
	if st == nil {
		return &reqState{}
	}
	return st
}

// fail records err for the response writer and returns a placeholder the library
// accepts for every method.
func fail(r *http.Request, err error) error {
	state(r).err = err
	return scimerrors.ScimErrorInternal
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := &reqState{base: h.opts.BaseURL}
	q := r.URL.Query()
	st.attrs, st.excluded = resource.ParseAttrList(q.Get("attributes")), resource.ParseAttrList(q.Get("excludedAttributes"))
	r = r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
	path := canonicalizeRequestPath(r)
	// A change goes on when its client hangs up, as if it had stayed (clientGone).
	client := r.Context()
	r, served := h.detachChange(r)
	defer served()
	if path == "/ServiceProviderConfig" && r.Method == http.MethodGet {
		h.serviceProviderConfig(w, r)
		return
	}
	// Before anything parses a filter or a path: the library's parser recurses per
	// nesting level and costs microseconds per byte (resource.CheckFilter).
	if err := checkQueryLimits(q); err != nil {
		WriteError(w, r, h.log, err)
		return
	}
	if err := takeFilter(r, path, st); err != nil {
		WriteError(w, r, h.log, err)
		return
	}
	if r.Body != nil && r.Method != http.MethodGet && r.Method != http.MethodDelete {
		body, err := io.ReadAll(io.LimitReader(r.Body, h.opts.MaxBodyBytes+1))
		if err != nil {
			WriteError(w, r, h.log, resource.BadRequest(scimerrors.ScimTypeInvalidSyntax, "could not read the request body"))
			return
		}
		if int64(len(body)) > h.opts.MaxBodyBytes {
			WriteError(w, r, h.log, scimerrors.ScimError{Status: http.StatusRequestEntityTooLarge,
				Detail: fmt.Sprintf("request body exceeds the limit of %d bytes", h.opts.MaxBodyBytes)})
			return
		}
		// encoding/json would turn invalid UTF-8 into U+FFFD without a word, and the
		// mangled text would reach the store and Panther: refuse it instead.
		if !utf8.Valid(body) {
			WriteError(w, r, h.log, resource.BadRequest(scimerrors.ScimTypeInvalidValue, "the request body is not valid UTF-8: send JSON encoded as UTF-8"))
			return
		}
		if err := checkBodyLimits(r.Method, path, body); err != nil {
			WriteError(w, r, h.log, err)
			return
		}
		if err := checkBody(r.Method, path, body); err != nil {
			WriteError(w, r, h.log, err)
			return
		}
		if r.Method == http.MethodPost && strings.HasSuffix(path, "/.search") {
			if body, err = takeSearchFilter(path, body, st); err != nil {
				WriteError(w, r, h.log, err)
				return
			}
		}
		if body, err = h.normalizeBody(r, path, body); err != nil {
			WriteError(w, r, h.log, err)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}

	rec := &recorder{header: http.Header{}}
	h.lib.ServeHTTP(rec, r)
	if client.Err() != nil {
		h.clientGone(w, r, rec.status, st.err)
		return
	}
	if st.err != nil {
		WriteError(w, r, h.log, st.err)
		return
	}
	h.finish(w, r, rec, st)
}

// finish post-processes the library's response: the list's itemsPerPage, absolute
// locations, attributes/excludedAttributes, If-None-Match, and opaque 500s.
func (h *handler) finish(w http.ResponseWriter, r *http.Request, rec *recorder, st *reqState) {
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	if rec.status >= 500 {
		h.log.ErrorContext(r.Context(), "library error", "status", rec.status, "body", rec.body.String())
		WriteError(w, r, h.log, errors.New("library error"))
		return
	}
	if rec.status >= 300 || rec.body.Len() == 0 {
		if st.etag != "" && rec.status == http.StatusNoContent {
			w.Header().Set("ETag", st.etag)
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body.Bytes())
		return
	}
	etag := rec.header.Get("Etag")
	if etag != "" && r.Method == http.MethodGet && etagMatches(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	dec := json.NewDecoder(bytes.NewReader(rec.body.Bytes()))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body.Bytes())
		return
	}
	rs := resource.UserSchema
	if strings.HasPrefix(r.URL.Path, "/Groups") {
		rs = resource.GroupSchema
	}
	if list, ok := doc["Resources"].([]any); ok {
		for i, item := range list {
			if m, ok := item.(map[string]any); ok {
				list[i] = h.shape(rs, m, st)
			}
		}
		doc["itemsPerPage"] = len(list)
	} else if _, ok := doc["id"]; ok && (strings.HasPrefix(r.URL.Path, "/Users") || strings.HasPrefix(r.URL.Path, "/Groups")) {
		doc = h.shape(rs, doc, st)
	}
	if loc, ok := rec.header["Location"]; ok && len(loc) == 1 && !strings.Contains(loc[0], "://") {
		w.Header().Set("Location", st.base+"/"+strings.TrimPrefix(loc[0], "/"))
	}
	out, _ := json.Marshal(doc)
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(rec.status)
	_, _ = w.Write(out)
}

func (h *handler) shape(rs resource.Schema, m map[string]any, st *reqState) map[string]any {
	if meta, ok := m["meta"].(map[string]any); ok {
		if loc, _ := meta["location"].(string); loc != "" && !strings.Contains(loc, "://") {
			meta["location"] = st.base + "/" + strings.TrimPrefix(loc, "/")
		}
	}
	if len(st.attrs) == 0 && len(st.excluded) == 0 {
		return m
	}
	return rs.Project(m, st.attrs, st.excluded)
}

func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == strings.TrimPrefix(etag, "W/") {
			return true
		}
	}
	return false
}

// ifMatch returns the version an If-Match header requires (0: none). A value that
// is not one of our ETags can never match: it is reported as version -1.
func ifMatch(r *http.Request) int64 {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" || v == "*" {
		return 0
	}
	if n, ok := parseETag(v); ok {
		return n
	}
	return -1
}

func etagOf(version int64) string { return `W/"` + strconv.FormatInt(version, 10) + `"` }

func parseETag(v string) (int64, bool) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "W/")
	v = strings.Trim(v, `"`)
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil && n > 0
}

func (h *handler) serviceProviderConfig(w http.ResponseWriter, r *http.Request) {
	doc := map[string]any{
		"schemas":          []string{"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"},
		"documentationUri": "https://github.com/panther-scim/panther-scim#readme",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": h.opts.MaxResults},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": true},
		"etag":             map[string]any{"supported": true},
		"authenticationSchemes": []any{
			map[string]any{
				"type": "oauthbearertoken", "name": "OAuth Bearer Token", "primary": true,
				"description": "Authentication with a bearer token (a static SCIM token, or an access token from the client-credentials grant at /oauth/token).",
				"specUri":     "https://www.rfc-editor.org/info/rfc6750",
			},
		},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": h.opts.BaseURL + "/ServiceProviderConfig"},
	}
	w.Header().Set("Content-Type", "application/scim+json")
	_ = json.NewEncoder(w).Encode(doc)
}

// checkBody rejects, with a detail saying where, POST and PUT bodies that are not
// JSON objects (the library's error says only "invalid syntax").
func checkBody(method, path string, body []byte) error {
	switch {
	case (path == "/Users" || path == "/Groups") && method == http.MethodPost:
	case (strings.HasPrefix(path, "/Users/") || strings.HasPrefix(path, "/Groups/")) && method == http.MethodPut:
	default:
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return resource.BadRequest(scimerrors.ScimTypeInvalidSyntax, "the request body is not a JSON object: %v", jsonProblem(err))
	}
	return nil
}

func jsonProblem(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s at byte %d", se.Error(), se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "expected a JSON object"
	}
	return err.Error()
}

type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
