package pantherfake

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
	"time"
)

// HTTPSourcePath is where the fake serves Panther's HTTP log sources: POST
// /http/<source id>, as Panther's ingest URLs end. Any source id is accepted.
const HTTPSourcePath = "/http/"

// HTTPSourceOp is the Op of an HTTP source request in the call log, and the op to
// name in FailNext and DropNext to fail or drop HTTP source requests only.
const HTTPSourceOp = "httpSource"

// maxSourceBody is the largest request Panther's HTTP sources accept (1 MB, headers
// included; the fake counts the body only).
const maxSourceBody = 1 << 20

// HTTP source authentication methods, as Panther names them when a source is created.
const (
	SourceAuthNone         = "none"
	SourceAuthSharedSecret = "sharedSecret"
	SourceAuthHMAC         = "hmac"
	SourceAuthBearer       = "bearer"
)

// HTTPSourceAuth is how the HTTP source authenticates requests, as configured on a
// Panther HTTP source:
//   - sharedSecret: the header named Header must hold Secret exactly;
//   - hmac: the header named Header must hold the hex HMAC of the request body, keyed
//     with Secret, with Algorithm (sha1, sha256, sha384 or sha512);
//   - bearer: Authorization must be "Bearer " + Secret;
//   - none (or empty Method): no authentication.
//
// A request that fails it gets 401 and its events are not kept.
type HTTPSourceAuth struct {
	Method    string
	Header    string
	Algorithm string
	Secret    string
}

// Validate reports a configuration Panther would not accept.
func (a HTTPSourceAuth) Validate() error {
	switch a.Method {
	case "", SourceAuthNone:
		return nil
	case SourceAuthSharedSecret, SourceAuthHMAC:
		if a.Header == "" {
			return fmt.Errorf("%s authentication needs a header name", a.Method)
		}
		if a.Method == SourceAuthHMAC {
			if _, ok := hmacHashes[a.Algorithm]; !ok {
				return fmt.Errorf("unknown HMAC algorithm %q (sha1, sha256, sha384 or sha512)", a.Algorithm)
			}
		}
	case SourceAuthBearer:
	default:
		return fmt.Errorf("unknown authentication method %q (none, sharedSecret, hmac or bearer)", a.Method)
	}
	if a.Secret == "" {
		return fmt.Errorf("%s authentication needs a secret", a.Method)
	}
	return nil
}

var hmacHashes = map[string]func() hash.Hash{
	"sha1": sha1.New, "sha256": sha256.New, "sha384": sha512.New384, "sha512": sha512.New,
}

// check reports whether the request carries the configured credential for body.
func (a HTTPSourceAuth) check(r *http.Request, body []byte) bool {
	switch a.Method {
	case "", SourceAuthNone:
		return true
	case SourceAuthSharedSecret:
		return subtle.ConstantTimeCompare([]byte(r.Header.Get(a.Header)), []byte(a.Secret)) == 1
	case SourceAuthBearer:
		return subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+a.Secret)) == 1
	case SourceAuthHMAC:
		got, err := hex.DecodeString(strings.TrimSpace(r.Header.Get(a.Header)))
		if err != nil {
			return false
		}
		m := hmac.New(hmacHashes[a.Algorithm], []byte(a.Secret))
		m.Write(body)
		return hmac.Equal(got, m.Sum(nil))
	}
	return false
}

// SourceRequest is one request to the HTTP source as the fake saw it.
type SourceRequest struct {
	// Status is the HTTP status answered (0 when the answer was dropped).
	Status int
	// Events are the request's JSON lines, decoded; kept only when it was accepted
	// (2xx, or dropped after being accepted).
	Events []map[string]any
	Time   time.Time
}

// SetHTTPSourceAuth sets how the HTTP source authenticates requests.
func (s *Server) SetHTTPSourceAuth(a HTTPSourceAuth) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sourceAuth = a
}

// HTTPSourceDown makes the HTTP source alone answer 503 (with Retry-After) until
// HTTPSourceDown(false); the GraphQL API is unaffected.
func (s *Server) HTTPSourceDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sourceDown = down
}

// SourceRequests returns the requests the HTTP source answered, in order.
func (s *Server) SourceRequests() []SourceRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SourceRequest(nil), s.sourceReqs...)
}

// SourceEvents returns every event the HTTP source accepted, in the order received,
// duplicates included (an at-least-once sender may send an event twice).
func (s *Server) SourceEvents() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, r := range s.sourceReqs {
		out = append(out, r.Events...)
	}
	return out
}

// serveHTTPSource accepts a batch of JSON lines (or a JSON object, or a JSON array
// of objects) as Panther's HTTP sources do: 200 when the credential is right, 401
// when not, 413 over 1 MB. Unlike Panther, which accepts any bytes and reports
// parsing failures later in its console, the fake answers 400 to a body that is not
// JSON objects, so that tests see a malformed batch at once.
func (s *Server) serveHTTPSource(w http.ResponseWriter, r *http.Request) {
	call := Call{Op: HTTPSourceOp, Time: time.Now()}
	s.enter()
	defer s.leave()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSourceBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		s.answerSource(w, &call, http.StatusRequestEntityTooLarge, nil, "payload exceeds 1 MB")
		return
	}
	if err != nil {
		s.answerSource(w, &call, http.StatusBadRequest, nil, "reading the body: "+err.Error())
		return
	}
	s.mu.Lock()
	down, auth := s.sourceDown || s.down, s.sourceAuth
	s.mu.Unlock()
	if down {
		s.writeFault(w, &call, http.StatusServiceUnavailable)
		s.recordSource(call.Status, nil, call.Time)
		return
	}
	if d := s.delay(); d > 0 && !wait(r.Context(), call.Time.Add(d)) {
		call.Status = 499
		s.record(call)
		return
	}
	if status := s.injectedFailure(HTTPSourceOp); status != 0 {
		s.writeFault(w, &call, status)
		s.recordSource(call.Status, nil, call.Time)
		return
	}
	if !auth.check(r, body) {
		s.answerSource(w, &call, http.StatusUnauthorized, nil, "unauthorized")
		return
	}
	events, err := decodeEvents(body)
	if err != nil {
		s.answerSource(w, &call, http.StatusBadRequest, nil, err.Error())
		return
	}
	if s.takeDrop(HTTPSourceOp) {
		// Accepted, then the answer is lost: the sender cannot know, and sends again.
		call.Dropped = true
		s.record(call)
		s.recordSource(0, events, call.Time)
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
			return
		}
		panic(http.ErrAbortHandler)
	}
	s.answerSource(w, &call, http.StatusOK, events, "")
}

// listSourceEvents answers GET on the source with the events it accepted, as JSON
// lines, oldest first: what a person trying the demo would look for in Panther's
// data explorer. (Panther's HTTP sources take POST only; this is the double's.)
func (s *Server) listSourceEvents(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	for _, e := range s.SourceEvents() {
		if err := enc.Encode(e); err != nil {
			return
		}
	}
}

func (s *Server) answerSource(w http.ResponseWriter, call *Call, status int, events []map[string]any, msg string) {
	var v any = map[string]any{}
	if msg != "" {
		call.Errors = append(call.Errors, msg)
		v = map[string]string{"message": msg}
	}
	s.recordSource(status, events, call.Time)
	s.writeJSON(w, call, status, nil, v)
}

func (s *Server) recordSource(status int, events []map[string]any, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sourceReqs = append(s.sourceReqs, SourceRequest{Status: status, Events: events, Time: at})
}

// decodeEvents reads JSON lines, a JSON array of objects, or one JSON object.
func decodeEvents(body []byte) ([]map[string]any, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, errors.New("empty payload")
	}
	if trimmed[0] == '[' {
		var out []map[string]any
		if err := json.Unmarshal(trimmed, &out); err != nil {
			return nil, fmt.Errorf("payload is not a JSON array of objects: %w", err)
		}
		return out, nil
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(trimmed))
	sc.Buffer(make([]byte, 64<<10), maxSourceBody)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var e map[string]any
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, fmt.Errorf("line %d is not a JSON object: %w", n, err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}
