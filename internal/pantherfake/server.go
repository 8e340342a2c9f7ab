package pantherfake

import (
	"context"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
	"golang.org/x/time/rate"

	"github.com/panther-scim/panther-scim/internal/panther"
	"github.com/panther-scim/panther-scim/internal/provision"
)

// Path is where the fake serves GraphQL, as Panther does. LegacyPath is served too, for
// deployments whose URL carries the /v1 prefix.
const (
	Path       = "/public/graphql"
	LegacyPath = "/v1/public/graphql"
)

// DefaultAPIKey is the key New requires when Options.APIKey is empty.
const DefaultAPIKey = "pantherfake-api-key"

// maxBody caps a request body.
const maxBody = 1 << 20

// Options configure a Server. Every fault can also be changed later with the Server's setters.
type Options struct {
	// APIKey is the X-API-Key value every request must carry (DefaultAPIKey when empty).
	APIKey string
	// Latency delays every answer to Latency after the request arrived (within about
	// 0.15 ms, see wait); Jitter adds a random extra delay in [0, Jitter).
	Latency time.Duration
	Jitter  time.Duration
	// ErrorRate is the fraction of requests answered with ErrorStatus before being processed.
	ErrorRate float64
	// ErrorStatus is the status of ErrorRate failures. Default 500.
	ErrorStatus int
	// RateLimitRate is the fraction of requests answered 429 before being processed.
	RateLimitRate float64
	// RetryAfter is sent as Retry-After (in whole seconds, rounded up) with injected 429 and
	// 503 answers. Default 1s; negative: no header.
	RetryAfter time.Duration
	// Seed makes fault injection and ids deterministic; 0 seeds from the clock.
	Seed int64
	// Now is the clock for createdAt and updatedAt. Default time.Now.
	Now func() time.Time
	// Schema is the schema to serve instead of panther.Schema (LoadSchema reads one), so
	// that a test can play a Panther whose API changed: a renamed field, a removed argument.
	// The resolvers stay Panther's; a field they do not know answers null.
	Schema *ast.Schema
	// RefuseIntrospection answers __schema and __type queries with a validation error, as
	// a server with introspection turned off does.
	RefuseIntrospection bool
	// TokenPermissions are the Panther permissions of the API key (nil: all of them). Reading
	// users and roles needs UserRead ("Read User Info"), changing them UserModify ("Manage
	// Users"); without it the field fails with a FORBIDDEN error and HTTP 200.
	TokenPermissions []string
	// HTTPSource is how the HTTP log source (HTTPSourcePath) authenticates requests;
	// the zero value accepts any.
	HTTPSource HTTPSourceAuth
	// DuplicateCode and DuplicateMessage, when either is set, replace the documented
	// answer to a duplicate email (code ALREADY_EXISTS, "a user with email ... already
	// exists") with words no client knows (see SetDuplicateAnswer).
	DuplicateCode    string
	DuplicateMessage string
	// RateCeiling, when positive, is the rate (requests per second, with a burst of one
	// second's worth) above which requests are answered 429 with Retry-After on arrival,
	// without waiting for Latency or being processed, as an API gateway's rate limiter
	// does. Requests refused do not count against the rate.
	RateCeiling float64
	// MaxCallLog bounds the call log (Calls) to about the last MaxCallLog calls; 0 keeps
	// every call, as tests want. Count and CallCounts count every call either way. A
	// long-running double (demo) sets it, or the log would grow by every call's variables.
	MaxCallLog int
}

// Call is one request as the fake saw it.
type Call struct {
	// Op is the operation's first root field ("inviteUser", "users", ...); empty when the
	// request could not be parsed.
	Op string
	// Variables are the request's variables as sent.
	Variables map[string]any
	// Status is the HTTP status answered; 0 when the response was dropped.
	Status int
	// Time is when the request arrived.
	Time time.Time
	// Dropped: the operation was executed and the connection closed without an answer.
	Dropped bool
	// Errors are the messages of the GraphQL errors answered.
	Errors []string
}

// Server is Panther's users-and-roles API in memory. All methods are safe for concurrent use.
type Server struct {
	apiKey string
	schema *ast.Schema

	mu          sync.Mutex
	rng         *rand.Rand
	now         func() time.Time
	started     time.Time
	users       map[string]*user
	emailIndex  map[string]string // lower-cased email -> user id
	byAge       []*user           // users oldest first (sortedUsersLocked); nil when stale
	roles       map[string]*role
	permissions map[string]bool // the schema's Permission values
	seq         int
	owner       *user // the API token's creator; not among users
	tokenID     string

	latency, jitter time.Duration
	errorRate       float64
	errorStatus     int
	rateLimitRate   float64
	retryAfter      time.Duration
	failNext        map[string][]int // op ("" = any) -> statuses still to answer
	dropNext        map[string]int   // op ("" = any) -> responses still to drop
	down            bool
	noIntrospection bool
	tokenPerms      map[string]bool // nil: every permission

	sourceAuth HTTPSourceAuth
	sourceDown bool
	sourceReqs []SourceRequest
	dupCode    string
	dupMessage string

	calls       []Call
	maxCallLog  int
	opCounts    map[string]int // op -> calls served since the last ResetCalls
	ceiling     *rate.Limiter  // RateCeiling; nil: none
	inFlight    int
	maxInFlight int

	roots map[string]rootResolver

	docs docCache
}

// docCache keeps the parsed and validated documents of the queries the server has
// seen, as GraphQL servers do: a client sends the same few operations again and again,
// and parsing and validating each one was most of the double's CPU per call, which
// a load measurement against it would count as Panther latency. Documents are
// validated once, before they are shared, and only read after that.
type docCache struct {
	mu     sync.RWMutex
	schema *ast.Schema // the schema the documents were validated against
	m      map[string]*preparedDoc
}

type preparedDoc struct {
	doc      *ast.QueryDocument
	parseErr error
	invalid  gqlerror.List // validation errors
}

// maxCachedDocs bounds the cache: a client sending ever new queries (a fuzzer) gets
// them parsed each time instead of growing the map.
const maxCachedDocs = 256

func (c *docCache) prepare(schema *ast.Schema, query string) *preparedDoc {
	c.mu.RLock()
	p, ok := c.m[query]
	same := c.schema == schema
	c.mu.RUnlock()
	if ok && same {
		return p
	}
	p = &preparedDoc{}
	p.doc, p.parseErr = parser.ParseQuery(&ast.Source{Name: "request", Input: query})
	if p.parseErr == nil {
		p.invalid = validator.Validate(schema, p.doc)
	}
	c.mu.Lock()
	if c.m == nil || c.schema != schema {
		c.m, c.schema = map[string]*preparedDoc{}, schema
	}
	if len(c.m) < maxCachedDocs {
		c.m[query] = p
	}
	c.mu.Unlock()
	return p
}

// schemaOnce parses panther.Schema once for every Server.
var schemaOnce = sync.OnceValues(func() (*ast.Schema, error) {
	return gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: panther.Schema})
})

// New returns a Server with Panther's default roles (Admin, Analyst, AnalystReadOnly) and no
// users.
func New(opts Options) *Server {
	base, err := schemaOnce()
	if err != nil {
		// panther.Schema is compiled in and tested; it cannot fail at run time.
		panic(fmt.Sprintf("pantherfake: loading panther.Schema: %v", err))
	}
	schema := base
	if opts.Schema != nil {
		schema = opts.Schema
	}
	seed := opts.Seed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	s := &Server{
		apiKey:          cmpOr(opts.APIKey, DefaultAPIKey),
		schema:          schema,
		rng:             rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15)),
		now:             opts.Now,
		users:           map[string]*user{},
		emailIndex:      map[string]string{},
		roles:           map[string]*role{},
		permissions:     map[string]bool{},
		latency:         opts.Latency,
		jitter:          opts.Jitter,
		errorRate:       opts.ErrorRate,
		errorStatus:     opts.ErrorStatus,
		retryAfter:      opts.RetryAfter,
		failNext:        map[string][]int{},
		dropNext:        map[string]int{},
		noIntrospection: opts.RefuseIntrospection,
		sourceAuth:      opts.HTTPSource,
	}
	s.setTokenPermissionsLocked(opts.TokenPermissions)
	s.rateLimitRate = opts.RateLimitRate
	s.maxCallLog, s.opCounts = opts.MaxCallLog, map[string]int{}
	s.setRateCeilingLocked(opts.RateCeiling)
	s.dupCode, s.dupMessage = opts.DuplicateCode, opts.DuplicateMessage
	if s.now == nil {
		s.now = time.Now
	}
	if s.errorStatus == 0 {
		s.errorStatus = http.StatusInternalServerError
	}
	if s.retryAfter == 0 {
		s.retryAfter = time.Second
	}
	s.started = s.now().UTC()
	var all []string
	// Panther's permissions, whatever schema is served: the default roles hold them all.
	for _, v := range base.Types["Permission"].EnumValues {
		s.permissions[v.Name] = true
		all = append(all, v.Name)
	}
	for _, d := range defaultRoles {
		perms := d.permissions
		if perms == nil {
			perms = all
		}
		r, err := s.newRoleLocked(d.name, perms, false)
		if err != nil {
			panic(fmt.Sprintf("pantherfake: default role %s: %v", d.name, err))
		}
		r.createdAt, r.updatedAt = s.started, s.started
	}
	s.roots = s.rootResolvers()
	maps.Copy(s.roots, s.introspectionRoots())
	s.tokenID = s.newID()
	s.owner = &user{id: s.newID(), email: "owner@pantherfake.example", givenName: "Token", familyName: "Owner",
		roleID: s.roleByNameLocked("Admin").id, createdAt: s.started, srv: s}
	return s
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// newID returns a UUID (version 4) drawn from the seeded generator. Callers hold s.mu.
func (s *Server) newID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], s.rng.Uint64())
	binary.LittleEndian.PutUint64(b[8:], s.rng.Uint64())
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return uuid.UUID(b).String()
}

// Handler serves GraphQL at Path and LegacyPath, the HTTP log source under
// HTTPSourcePath (GET there lists what it accepted), and GET /healthz.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+Path, s.serveGraphQL)
	mux.HandleFunc("POST "+LegacyPath, s.serveGraphQL)
	mux.HandleFunc("POST "+HTTPSourcePath+"{source}", s.serveHTTPSource)
	mux.HandleFunc("GET "+HTTPSourcePath+"{source}", s.listSourceEvents)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	return mux
}

// Start serves the fake on a fresh loopback port (127.0.0.1:0). It returns the full GraphQL
// URL and a function that stops the server and closes every connection.
func (s *Server) Start() (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("pantherfake: %w", err)
	}
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(ln)
	}()
	return "http://" + ln.Addr().String() + Path, func() {
		_ = hs.Close()
		<-done
	}, nil
}

// graphQLRequest is the body of a GraphQL-over-HTTP POST.
type graphQLRequest struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName"`
	Variables     map[string]any `json:"variables"`
}

// graphQLResponse is an executed operation's answer.
type graphQLResponse struct {
	Data   *jsonOut // nil: "data" is null
	Errors []gqlError
}

// release gives the data's pieces back; the answer is not to be used after.
func (r graphQLResponse) release() {
	if r.Data != nil {
		r.Data.release()
	}
}

// noData is a response that stopped before execution: "data" is absent, as the spec asks.
type noData struct {
	Errors []gqlError `json:"errors"`
}

func (s *Server) serveGraphQL(w http.ResponseWriter, r *http.Request) {
	call := Call{Time: time.Now()}
	s.enter()
	defer s.leave()

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		s.writeJSON(w, &call, http.StatusRequestEntityTooLarge, nil, noData{Errors: []gqlError{{Message: err.Error()}}})
		return
	}
	var req graphQLRequest
	jsonErr := json.Unmarshal(body, &req)
	call.Variables = req.Variables
	var schema *ast.Schema
	var doc *ast.QueryDocument
	var op *ast.OperationDefinition
	var parseErr error
	var invalid gqlerror.List
	if jsonErr == nil {
		schema = s.currentSchema()
		p := s.docs.prepare(schema, req.Query)
		doc, parseErr, invalid = p.doc, p.parseErr, p.invalid
		if parseErr == nil {
			op = selectOperation(doc, req.OperationName)
			call.Op = rootFieldName(op)
		}
	}

	// A Panther that is down answers nothing useful, before looking at the key.
	if s.isDown() {
		s.writeFault(w, &call, http.StatusServiceUnavailable)
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("X-API-Key")), []byte(s.apiKey)) != 1 {
		s.writeErrors(w, &call, http.StatusUnauthorized, gqlError{
			Message: "Unauthorized: missing or invalid X-API-Key", Extensions: map[string]any{"code": codeUnauthenticated}})
		return
	}
	switch {
	case jsonErr != nil:
		s.writeErrors(w, &call, http.StatusBadRequest, gqlError{
			Message: "request body is not a GraphQL JSON request: " + jsonErr.Error(), Extensions: map[string]any{"code": codeParseFailed}})
		return
	case parseErr != nil:
		s.writeErrors(w, &call, http.StatusBadRequest, toGQLErrors(parseErr, codeParseFailed)...)
		return
	}

	// A rate limiter in front of Panther answers before anything else happens.
	if s.overCeiling() {
		s.writeFault(w, &call, http.StatusTooManyRequests)
		return
	}
	// The latency counts from the request's arrival, as Panther's would.
	if d := s.delay(); d > 0 && !wait(r.Context(), call.Time.Add(d)) {
		call.Status = 499 // the client went away (nginx's convention)
		s.record(call)
		return
	}
	if status := s.injectedFailure(call.Op); status != 0 {
		s.writeFault(w, &call, status)
		return
	}

	if len(invalid) > 0 {
		s.writeErrors(w, &call, http.StatusOK, toGQLErrors(invalid, codeValidationFailed)...)
		return
	}
	if op == nil {
		msg := "operation name is required when the document has several operations"
		if req.OperationName != "" {
			msg = fmt.Sprintf("unknown operation %q", req.OperationName)
		}
		s.writeErrors(w, &call, http.StatusOK, gqlError{Message: msg, Extensions: map[string]any{"code": codeValidationFailed}})
		return
	}
	if isIntrospection(op) && s.refusesIntrospection() {
		// Apollo Server's wording and code, the commonest of production GraphQL servers.
		s.writeErrors(w, &call, http.StatusBadRequest, gqlError{
			Message:    "GraphQL introspection is not allowed, but the query contained __schema or __type",
			Extensions: map[string]any{"code": codeValidationFailed}})
		return
	}
	if op.Operation == ast.Subscription {
		s.writeErrors(w, &call, http.StatusOK, gqlError{Message: "subscriptions are not supported",
			Extensions: map[string]any{"code": codeValidationFailed}})
		return
	}
	vars, err := validator.VariableValues(schema, op, req.Variables)
	if err != nil {
		s.writeErrors(w, &call, http.StatusOK, toGQLErrors(err, codeBadUserInput)...)
		return
	}

	resp := s.execute(schema, doc, op, vars)
	for _, e := range resp.Errors {
		call.Errors = append(call.Errors, e.Message)
	}
	if s.takeDrop(call.Op) {
		// The operation has been applied; now lose the answer, as a broken connection would.
		call.Dropped = true
		resp.release()
		s.record(call)
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
			return
		}
		panic(http.ErrAbortHandler) // HTTP/2 or a wrapped writer: abort the stream instead
	}
	s.writeResult(w, &call, resp)
}

// writeResult writes an executed operation's response, its "data" as the executor wrote it.
func (s *Server) writeResult(w http.ResponseWriter, call *Call, resp graphQLResponse) {
	defer resp.release()
	call.Status = http.StatusOK
	s.record(*call)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if resp.Data != nil && resp.Data.err != nil {
		panic(http.ErrAbortHandler) // cannot happen: resolvers yield only JSON values
	}
	// A write error means the client went away; there is no one to tell.
	io.WriteString(w, `{"data":`)
	if resp.Data == nil {
		io.WriteString(w, "null")
	} else if resp.Data.writeTo(w) != nil {
		return
	}
	if len(resp.Errors) > 0 {
		errs, _ := json.Marshal(resp.Errors)
		io.WriteString(w, `,"errors":`)
		w.Write(errs)
	}
	io.WriteString(w, "}")
}

// execute runs a validated operation with the state locked, so that each request sees and
// changes the state atomically. The answer's data is written while the lock is held (the
// objects read the live state) into pooled pieces, which writeResult sends after.
func (s *Server) execute(schema *ast.Schema, doc *ast.QueryDocument, op *ast.OperationDefinition, vars map[string]any) graphQLResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := newJSONOut()
	e := &executor{schema: schema, doc: doc, vars: vars, roots: s.roots, authorize: s.authorizeLocked, out: out}
	if !e.run(op) {
		out.release()
		out = nil
	}
	return graphQLResponse{Data: out, Errors: e.errs}
}

func selectOperation(doc *ast.QueryDocument, name string) *ast.OperationDefinition {
	if name != "" {
		return doc.Operations.ForName(name)
	}
	if len(doc.Operations) == 1 {
		return doc.Operations[0]
	}
	return nil
}

// rootFieldName names a call after the operation's first root field, following fragments.
func rootFieldName(op *ast.OperationDefinition) string {
	if op == nil {
		return ""
	}
	for _, sel := range op.SelectionSet {
		switch f := sel.(type) {
		case *ast.Field:
			return f.Name
		case *ast.InlineFragment:
			for _, inner := range f.SelectionSet {
				if fld, ok := inner.(*ast.Field); ok {
					return fld.Name
				}
			}
		}
	}
	return ""
}

func toGQLErrors(err error, code string) []gqlError {
	var list gqlerror.List
	var one *gqlerror.Error
	switch {
	case errors.As(err, &list):
	case errors.As(err, &one):
		list = gqlerror.List{one}
	default:
		return []gqlError{{Message: err.Error(), Extensions: map[string]any{"code": code}}}
	}
	out := make([]gqlError, 0, len(list))
	for _, e := range list {
		ge := gqlError{Message: e.Message, Extensions: map[string]any{"code": code}}
		for _, l := range e.Locations {
			ge.Locations = append(ge.Locations, location{Line: l.Line, Column: l.Column})
		}
		for _, p := range e.Path {
			switch p := p.(type) {
			case ast.PathName:
				ge.Path = append(ge.Path, string(p))
			case ast.PathIndex:
				ge.Path = append(ge.Path, int(p))
			}
		}
		out = append(out, ge)
	}
	return out
}

func (s *Server) writeErrors(w http.ResponseWriter, call *Call, status int, errs ...gqlError) {
	for _, e := range errs {
		call.Errors = append(call.Errors, e.Message)
	}
	s.writeJSON(w, call, status, nil, noData{Errors: errs})
}

// writeFault answers an injected (or Down) failure without processing the request.
func (s *Server) writeFault(w http.ResponseWriter, call *Call, status int) {
	h := http.Header{}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		s.mu.Lock()
		ra := s.retryAfter
		s.mu.Unlock()
		if ra > 0 {
			h.Set("Retry-After", strconv.FormatInt(int64((ra+time.Second-1)/time.Second), 10))
		}
	}
	s.writeJSON(w, call, status, h, map[string]string{
		"message": http.StatusText(status) + " (injected by pantherfake)",
	})
}

// writeJSON logs the call, then answers: a test that has its answer finds the call logged.
func (s *Server) writeJSON(w http.ResponseWriter, call *Call, status int, h http.Header, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"errors":[{"message":"pantherfake: encoding the response failed"}]}`)
	}
	call.Status = status
	s.record(*call)
	maps.Copy(w.Header(), h)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// ---- fault injection ----

func (s *Server) isDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down
}

func (s *Server) delay() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.latency
	if s.jitter > 0 {
		d += time.Duration(s.rng.Int64N(int64(s.jitter)))
	}
	return d
}

// injectedFailure returns the status to fail this call with, or 0: a FailNext for the op (or
// for any op), else a random 429 or 5xx at the configured rates.
func (s *Server) injectedFailure(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, key := range []string{op, ""} {
		if q := s.failNext[key]; len(q) > 0 {
			s.failNext[key] = q[1:]
			return q[0]
		}
	}
	if s.rateLimitRate > 0 && s.rng.Float64() < s.rateLimitRate {
		return http.StatusTooManyRequests
	}
	if s.errorRate > 0 && s.rng.Float64() < s.errorRate {
		return s.errorStatus
	}
	return 0
}

func (s *Server) takeDrop(op string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, key := range []string{op, ""} {
		if s.dropNext[key] > 0 {
			s.dropNext[key]--
			return true
		}
	}
	return false
}

// SetLatency delays every answer to fixed plus a random [0, jitter) after the request arrived.
func (s *Server) SetLatency(fixed, jitter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency, s.jitter = fixed, jitter
}

// SetErrorRate answers the fraction p of requests with status (500 when 0) without processing them.
func (s *Server) SetErrorRate(p float64, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if status == 0 {
		status = http.StatusInternalServerError
	}
	s.errorRate, s.errorStatus = p, status
}

// SetRateLimitRate answers the fraction p of requests 429 with Retry-After: retryAfter
// (rounded up to whole seconds; none when retryAfter is not positive).
func (s *Server) SetRateLimitRate(p float64, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateLimitRate, s.retryAfter = p, retryAfter
}

// SetRateCeiling answers 429 (with the Retry-After of SetRateLimitRate, 1 s by default)
// to the requests that arrive above perSecond, on arrival: a token bucket holding one
// second's worth of requests (at least one), which a refused request does not spend.
// Zero or negative removes the ceiling.
func (s *Server) SetRateCeiling(perSecond float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setRateCeilingLocked(perSecond)
}

func (s *Server) setRateCeilingLocked(perSecond float64) {
	if perSecond <= 0 {
		s.ceiling = nil
		return
	}
	s.ceiling = rate.NewLimiter(rate.Limit(perSecond), max(1, int(math.Ceil(perSecond))))
}

// overCeiling reports whether a request arriving now (Options.Now) is above the rate
// ceiling.
func (s *Server) overCeiling() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ceiling != nil && !s.ceiling.AllowN(s.now(), 1)
}

// FailNext answers the next n calls of op (a root field such as "inviteUser"; "" for any)
// with the HTTP status, without processing them. 429 and 503 carry Retry-After.
func (s *Server) FailNext(op string, n int, status int) {
	if status < 100 || status > 599 {
		status = http.StatusInternalServerError
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failNext[op] = append(s.failNext[op], status)
	}
}

// DropNext makes the next n calls of op ("" for any) apply the operation and then close the
// connection without answering: the case where a client cannot know whether its mutation
// happened.
func (s *Server) DropNext(op string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropNext[op] += n
}

// SetSchema serves schema from now on (nil: panther.Schema), as a Panther whose API
// changed while the bridge runs.
func (s *Server) SetSchema(schema *ast.Schema) {
	if schema == nil {
		schema, _ = schemaOnce()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.schema = schema
}

func (s *Server) currentSchema() *ast.Schema {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.schema
}

// SetTokenPermissions changes the permissions of the API key (nil: all of them).
func (s *Server) SetTokenPermissions(perms []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setTokenPermissionsLocked(perms)
}

func (s *Server) setTokenPermissionsLocked(perms []string) {
	if perms == nil {
		s.tokenPerms = nil
		return
	}
	s.tokenPerms = map[string]bool{}
	for _, p := range perms {
		s.tokenPerms[p] = true
	}
}

// fieldPermissions is the permission each root field needs (Panther's documentation: Read
// User Info for reading users and roles, Manage Users for changing them).
var fieldPermissions = map[string]string{
	"users": "UserRead", "userById": "UserRead", "userByEmail": "UserRead",
	"roles": "UserRead", "roleById": "UserRead", "roleByName": "UserRead",
	"inviteUser": "UserModify", "updateUser": "UserModify", "deleteUser": "UserModify",
	"createRole": "UserModify", "updateRole": "UserModify", "deleteRole": "UserModify",
}

func (s *Server) authorizeLocked(field string) error {
	need := fieldPermissions[field]
	if s.tokenPerms == nil || need == "" || s.tokenPerms[need] {
		return nil
	}
	return errorf(codeForbidden, "access denied: the API token lacks the %s permission", need)
}

// RefuseIntrospection makes the fake refuse (true) or answer (false) __schema and __type
// queries from now on.
func (s *Server) RefuseIntrospection(refuse bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noIntrospection = refuse
}

func (s *Server) refusesIntrospection() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.noIntrospection
}

// Down makes the fake answer every request 503 (with Retry-After) until Down(false).
func (s *Server) Down(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// SetDuplicateAnswer makes inviteUser and updateUser answer an email another user holds
// with a GraphQL error of this extensions code (none when empty) and message, instead of
// the documented ALREADY_EXISTS: the fault of a Panther whose wording for "already
// exists" nobody documented. Both empty restore the documented answer.
func (s *Server) SetDuplicateAnswer(code, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dupCode, s.dupMessage = code, message
}

// ClearFaults removes every fault: latency, rates, the rate ceiling, pending FailNext and DropNext, Down,
// HTTPSourceDown, and an undocumented duplicate answer.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dupCode, s.dupMessage = "", ""
	s.latency, s.jitter, s.errorRate, s.rateLimitRate, s.down, s.sourceDown = 0, 0, 0, 0, false, false
	s.ceiling = nil
	s.failNext, s.dropNext = map[string][]int{}, map[string]int{}
}

// ---- call log ----

func (s *Server) enter() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight++
	s.maxInFlight = max(s.maxInFlight, s.inFlight)
}

func (s *Server) leave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight--
}

func (s *Server) record(c Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opCounts[c.Op]++
	if s.maxCallLog > 0 && len(s.calls) >= s.maxCallLog {
		// Keep the newer half: amortised O(1) a call, and the log stays within bounds.
		keep := s.maxCallLog / 2
		n := copy(s.calls, s.calls[len(s.calls)-keep:])
		clear(s.calls[n:])
		s.calls = s.calls[:n]
	}
	s.calls = append(s.calls, c)
}

// Calls returns the requests served so far, in the order they finished (with
// Options.MaxCallLog, only the latest ones).
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Count returns how many requests for op (a root field name) were served, whatever their answer.
func (s *Server) Count(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opCounts[op]
}

// CallCounts returns how many requests were served for each op since the last
// ResetCalls ("" for requests that could not be parsed), whatever their answer.
func (s *Server) CallCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.opCounts)
}

// MaxInFlight is the largest number of requests the fake was handling at once.
func (s *Server) MaxInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxInFlight
}

// ResetCalls empties the call log and the in-flight maximum.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls, s.maxInFlight, s.opCounts = nil, s.inFlight, map[string]int{}
}

// WaitForCalls waits until at least n requests for op have been served or ctx ends, and
// reports whether they were.
func (s *Server) WaitForCalls(ctx context.Context, op string, n int) bool {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for s.Count(op) < n {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}

// ---- state helpers for tests ----

// AddUser creates a user behind the bridge's back, as an admin in Panther's console would.
// Errors wrap provision.ErrConflict (email taken), provision.ErrNotFound (unknown role) or
// provision.ErrInvalid (bad email or empty name).
func (s *Server) AddUser(email, givenName, familyName, roleName string) (provision.PantherUser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.roleByNameLocked(roleName)
	if r == nil {
		return provision.PantherUser{}, fmt.Errorf("pantherfake: role %q: %w", roleName, provision.ErrNotFound)
	}
	u, err := s.newUserLocked(email, givenName, familyName, r)
	if err != nil {
		return provision.PantherUser{}, helperError(err)
	}
	return s.toDomainUser(u), nil
}

func helperError(err error) error {
	var fe *fieldError
	if errors.As(err, &fe) {
		switch fe.code {
		case codeAlreadyExists:
			return fmt.Errorf("pantherfake: %s: %w", fe.msg, provision.ErrConflict)
		case codeNotFound:
			return fmt.Errorf("pantherfake: %s: %w", fe.msg, provision.ErrNotFound)
		default:
			return fmt.Errorf("pantherfake: %s: %w", fe.msg, provision.ErrInvalid)
		}
	}
	return err
}

// SetUserRole moves the user to the role (by name, case-insensitive).
func (s *Server) SetUserRole(id, roleName string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[id]
	if u == nil {
		return fmt.Errorf("pantherfake: user %s: %w", id, provision.ErrNotFound)
	}
	r := s.roleByNameLocked(roleName)
	if r == nil {
		return fmt.Errorf("pantherfake: role %q: %w", roleName, provision.ErrNotFound)
	}
	u.roleID = r.id
	return nil
}

// SetUserEnabled enables or disables the user, as Panther's console can (the API cannot).
func (s *Server) SetUserEnabled(id string, enabled bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[id]
	if u == nil {
		return fmt.Errorf("pantherfake: user %s: %w", id, provision.ErrNotFound)
	}
	u.enabled = enabled
	return nil
}

// SetUserEmail changes the user's email, as an administrator in Panther's console can.
func (s *Server) SetUserEmail(id, email string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[id]
	if u == nil {
		return fmt.Errorf("pantherfake: user %s: %w", id, provision.ErrNotFound)
	}
	if !validEmail(email) {
		return fmt.Errorf("pantherfake: invalid email %q: %w", email, provision.ErrInvalid)
	}
	if other := s.userByEmailLocked(email); other != nil && other.id != id {
		return fmt.Errorf("pantherfake: email %s is taken: %w", email, provision.ErrConflict)
	}
	delete(s.emailIndex, strings.ToLower(u.email))
	u.email = email
	s.emailIndex[strings.ToLower(email)] = id
	return nil
}

// SetUserNames changes the user's given and family names.
func (s *Server) SetUserNames(id, givenName, familyName string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[id]
	if u == nil {
		return fmt.Errorf("pantherfake: user %s: %w", id, provision.ErrNotFound)
	}
	u.givenName, u.familyName = givenName, familyName
	return nil
}

// RemoveUser deletes the user.
func (s *Server) RemoveUser(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[id]
	if u == nil {
		return fmt.Errorf("pantherfake: user %s: %w", id, provision.ErrNotFound)
	}
	s.removeUserLocked(u)
	return nil
}

// Users returns every user, oldest first.
func (s *Server) Users() []provision.PantherUser {
	s.mu.Lock()
	defer s.mu.Unlock()
	us := s.sortedUsersLocked()
	out := make([]provision.PantherUser, len(us))
	for i, u := range us {
		out[i] = s.toDomainUser(u)
	}
	return out
}

// UserByEmail finds a user by email, case-insensitively.
func (s *Server) UserByEmail(email string) (provision.PantherUser, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.userByEmailLocked(email)
	if u == nil {
		return provision.PantherUser{}, false
	}
	return s.toDomainUser(u), true
}

// AddRole creates a role, as an admin in Panther's console would.
func (s *Server) AddRole(name string, permissions []string) (provision.PantherRole, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.newRoleLocked(name, permissions, false)
	if err != nil {
		return provision.PantherRole{}, helperError(err)
	}
	return toDomainRole(r), nil
}

// Roles returns every role, by name.
func (s *Server) Roles() []provision.PantherRole {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]provision.PantherRole, 0, len(s.roles))
	for _, r := range s.roles {
		out = append(out, toDomainRole(r))
	}
	sortRoles(out)
	return out
}

func sortRoles(rs []provision.PantherRole) {
	slices.SortFunc(rs, func(a, b provision.PantherRole) int {
		return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
	})
}
