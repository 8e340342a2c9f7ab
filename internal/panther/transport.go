package panther

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/Khan/genqlient/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// maxResponseBytes caps a response body. users is not paginated: 100k users are ~30 MB.
const maxResponseBytes = 128 << 20

// maxRetryAfter caps a Retry-After value so that a bogus header cannot park a call for a day;
// MaxElapsed bounds the call anyway.
const maxRetryAfter = time.Hour

// transport is the graphql.Client the generated functions call: one HTTP attempt, no retry.
// Retrying is Client.call's business, because whether a retry is safe depends on the operation.
// probe marks the readiness check's attempts (Ping), which stay out of provisioning's
// budget: no connection slot and no token of the shared rate limiter, but one of their own.
type transport struct {
	c     *Client
	probe bool
}

// MakeRequest sends req once and decodes the answer into resp. Every error is an *Error.
func (t transport) MakeRequest(ctx context.Context, req *graphql.Request, resp *graphql.Response) error {
	return t.c.attempt(ctx, req, resp, t.probe)
}

// attempt is one HTTP exchange: wait for a concurrency slot and a rate token (a probe
// only for a token of its own limiter), POST, read the answer, classify it.
func (c *Client) attempt(ctx context.Context, req *graphql.Request, resp *graphql.Response, probe bool) error {
	return c.exchange(ctx, req, probe, func(op string, hresp *http.Response, release func(), readErr func(error) *Error) error {
		raw, err := io.ReadAll(io.LimitReader(hresp.Body, maxResponseBytes+1))
		if err != nil {
			return readErr(err)
		}
		release()
		if len(raw) > maxResponseBytes {
			return &Error{Op: op, StatusCode: hresp.StatusCode,
				Message: fmt.Sprintf("response larger than %d bytes", maxResponseBytes)}
		}
		return c.decode(op, hresp, raw, resp)
	})
}

// answerFunc reads and classifies an answer whose status line and headers have come.
// It calls release once it has read the body (freeing the connection slot for another
// call while it decodes), and readErr to describe an error reading the body.
type answerFunc func(op string, hresp *http.Response, release func(), readErr func(error) *Error) error

// exchange sends req once, after waiting for a slot and a rate token, and hands the
// answer to read; it tells the rate limiter how Panther answered. Every error is an
// *Error.
func (c *Client) exchange(ctx context.Context, req *graphql.Request, probe bool, read answerFunc) error {
	op := req.OpName

	body, err := json.Marshal(req)
	if err != nil {
		return &Error{Op: op, Kind: ErrInvalid, Message: "encoding the request: " + err.Error()}
	}

	// The slot is taken before the rate token, so that at most MaxConcurrent requests are in
	// flight and the token is spent only by a request that is about to go out. It is held
	// from the send to the end of the answer only: encoding before and decoding after are
	// not Panther's time, and under load another call can use the slot meanwhile.
	sem := c.sem
	if probe {
		sem = nil
	}
	if sem != nil {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return &Error{Op: op, Kind: ErrUnavailable, Message: "gave up waiting for a free connection slot",
				cause: ctx.Err(), reason: "queue"}
		}
	}
	held := sem != nil
	release := func() {
		if held {
			held = false
			<-sem
		}
	}
	defer release()
	var sentAt time.Time
	if probe {
		err = c.probeLimiter.Wait(ctx)
	} else {
		sentAt, err = c.limiter.Wait(ctx)
	}
	if err != nil {
		return &Error{Op: op, Kind: ErrUnavailable, Message: "gave up waiting for the client rate limit",
			cause: errors.Join(err, ctx.Err()), reason: "queue"}
	}

	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	// sent records whether the whole request went out. A request that was not written cannot
	// have been applied, so even a non-idempotent mutation may be sent again.
	var sent atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(info httptrace.WroteRequestInfo) {
		if info.Err == nil {
			sent.Store(true)
		}
	}}
	hreq, err := http.NewRequestWithContext(httptrace.WithClientTrace(actx, trace), http.MethodPost, c.cfg.URL,
		bytes.NewReader(body))
	if err != nil {
		return &Error{Op: op, Message: c.redact(err.Error())}
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("X-API-Key", c.cfg.Token)
	hreq.Header.Set("User-Agent", c.cfg.UserAgent)

	hresp, err := c.http.Do(hreq)
	if err != nil {
		return c.transportError(op, err, sent.Load(), actx, ctx)
	}
	defer hresp.Body.Close()
	readErr := func(err error) *Error {
		// The status line arrived, so Panther got the request and may have acted on it.
		e := c.transportError(op, err, true, actx, ctx)
		e.StatusCode = hresp.StatusCode
		return e
	}
	err = read(op, hresp, release, readErr)
	if !probe {
		c.feedback(sentAt, err)
	}
	return err
}

// feedback tells the rate limiter how Panther answered a call sent at sent: a 429 or a
// GraphQL rate-limit error, a 5xx, or anything else (which changes nothing).
func (c *Client) feedback(sent time.Time, err error) {
	var e *Error
	if !errors.As(err, &e) {
		return
	}
	switch {
	case errors.Is(e.Kind, ErrRateLimited):
		c.limiter.RateLimited(sent, e.retryAfter)
	case e.StatusCode >= 500:
		c.limiter.ServerError(sent, e.retryAfter)
	}
}

// transportError describes a request that got no complete answer.
func (c *Client) transportError(op string, err error, sent bool, attemptCtx, callCtx context.Context) *Error {
	e := &Error{Op: op, Kind: ErrUnavailable, cause: err, mayHaveApplied: sent, reason: "network"}
	switch {
	case callCtx.Err() != nil:
		// The caller gave up, or the call's MaxElapsed ran out.
		e.Message = "call ended before Panther answered: " + callCtx.Err().Error()
		e.cause = errors.Join(err, callCtx.Err())
	case errors.Is(attemptCtx.Err(), context.DeadlineExceeded):
		e.Message = fmt.Sprintf("no answer within %s", c.cfg.Timeout)
		e.cause = errors.Join(err, context.DeadlineExceeded)
		e.reason = "timeout"
	default:
		e.Message = c.redact(err.Error())
	}
	if !sent {
		e.Message += " (request not sent)"
	}
	return e
}

// decode classifies an HTTP answer and, when it is a GraphQL response, decodes it into resp.
func (c *Client) decode(op string, h *http.Response, raw []byte, resp *graphql.Response) error {
	status := h.StatusCode
	e := &Error{Op: op, StatusCode: status}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e.Kind, e.Message = ErrUnauthorized, c.bodyMessage(raw)
		return e
	case status == http.StatusTooManyRequests:
		// A rate limiter answers before the request is processed.
		e.Kind, e.Message, e.reason = ErrRateLimited, c.bodyMessage(raw), "status_429"
		e.retryAfter = parseRetryAfter(h.Header.Get("Retry-After"), time.Now())
		return e
	case status == http.StatusServiceUnavailable:
		// 503 is the answer of a server (or the gateway in front of it) that is not taking
		// requests: the request was not processed.
		e.Kind, e.Message, e.reason = ErrUnavailable, c.bodyMessage(raw), "status_503"
		e.retryAfter = parseRetryAfter(h.Header.Get("Retry-After"), time.Now())
		return e
	case status >= 500:
		// 500, 502, 504: the request may have been processed before things went wrong.
		e.Kind, e.Message, e.reason = ErrUnavailable, c.bodyMessage(raw), "status_5xx"
		e.retryAfter = parseRetryAfter(h.Header.Get("Retry-After"), time.Now())
		e.mayHaveApplied = true
		return e
	case status >= 300 && status < 400:
		// Redirects are not followed: the API key would travel with the POST to wherever the
		// Location points.
		e.Message = fmt.Sprintf("unexpected redirect to %q; check the configured Panther URL",
			c.redact(h.Header.Get("Location")))
		return e
	}

	if err := json.Unmarshal(raw, resp); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case status == http.StatusOK && errors.As(err, &typeErr):
			// Well-formed JSON of the wrong shape: Panther's schema changed under us.
			e.Message = "response does not match the schema: " + err.Error()
		case status == http.StatusOK:
			// A truncated or garbled answer to a request Panther did process.
			e.Kind, e.Message, e.reason, e.mayHaveApplied = ErrUnavailable,
				"unreadable response: "+err.Error(), "bad_response", true
		case status == http.StatusBadRequest || status == http.StatusUnprocessableEntity:
			e.Kind, e.Message = ErrInvalid, c.bodyMessage(raw)
		default:
			e.Message = "unexpected answer: " + c.bodyMessage(raw)
		}
		return e
	}
	if len(resp.Errors) > 0 {
		return c.graphQLError(e, resp.Errors)
	}
	if status != http.StatusOK {
		e.Message = "unexpected answer: " + c.bodyMessage(raw)
		return e
	}
	return nil
}

// graphQLError classifies the GraphQL errors of an answer into e (whose Op and
// StatusCode are set).
func (c *Client) graphQLError(e *Error, errs gqlerror.List) error {
	kind, code, msg := classifyGraphQL(errs)
	if kind == nil && e.StatusCode == http.StatusBadRequest {
		kind = ErrInvalid
	}
	e.Kind, e.Code, e.Message = kind, c.redact(code), c.redact(msg)
	switch kind {
	case ErrUnavailable:
		// An internal error inside a resolver: it may have done part of the work.
		e.reason, e.mayHaveApplied = "graphql_error", true
	case ErrRateLimited:
		e.reason = "graphql_error"
	}
	return e
}

// bodyMessage extracts a readable message from an error body: a GraphQL or {"message"} JSON
// body, else the start of the text.
func (c *Client) bodyMessage(raw []byte) string {
	var gql struct {
		Message string `json:"message"`
		Errors  []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(raw, &gql) == nil {
		var msgs []string
		if gql.Message != "" {
			msgs = append(msgs, gql.Message)
		}
		for _, e := range gql.Errors {
			msgs = append(msgs, e.Message)
		}
		if len(msgs) > 0 {
			return c.redact(strings.Join(msgs, "; "))
		}
	}
	s := strings.TrimSpace(string(raw))
	const max = 200
	if len(s) > max {
		s = s[:max]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "..."
	}
	return c.redact(s)
}

// redact removes the API token from text that came from outside (a server may echo headers).
func (c *Client) redact(s string) string {
	if len(c.cfg.Token) < 4 {
		return s
	}
	return strings.ReplaceAll(s, c.cfg.Token, "[REDACTED]")
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	if d <= 0 {
		return 0
	}
	return min(d, maxRetryAfter)
}

// backoff is the wait before retry number n (0-based): what Panther asked for when it sent
// Retry-After, else "full jitter" exponential backoff, a random wait in
// [0, min(MaxBackoff, BaseBackoff*2^n)], so that clients that failed together do not retry
// together.
func (c *Client) backoff(n int, err error) time.Duration {
	var e *Error
	if errors.As(err, &e) && e.retryAfter > 0 {
		return e.retryAfter
	}
	ceiling := c.cfg.MaxBackoff
	if n < 30 {
		ceiling = min(ceiling, c.cfg.BaseBackoff<<n)
	}
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling + 1)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
