package panther

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Khan/genqlient/graphql"
	"golang.org/x/time/rate"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// Config configures a Client. Zero values take the defaults given on each field.
type Config struct {
	// URL is the full GraphQL endpoint, e.g. https://api.example.runpanther.net/public/graphql
	// (some deployments serve /v1/public/graphql). Required.
	URL string
	// Token is the Panther API token, sent as X-API-Key. Required. Load it with LoadToken;
	// it never appears in logs or error strings.
	Token string
	// Timeout bounds one HTTP attempt. Default 15s.
	Timeout time.Duration
	// MaxRetries is the number of further attempts after the first. Default 4; negative: none.
	MaxRetries int
	// MaxElapsed bounds a whole call: queueing, attempts and waits between them. Default 60s.
	MaxElapsed time.Duration
	// BaseBackoff is the ceiling of the first retry's random wait; it doubles per retry up to
	// MaxBackoff. Defaults 200ms and 10s.
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// MaxConcurrent bounds the requests in flight to Panther at once. Default 8.
	MaxConcurrent int
	// RatePerSecond and Burst bound the rate of requests to Panther (a token bucket shared by
	// all calls, retries included). Defaults 50/s and a burst equal to the rate. Panther
	// documents no rate limit, so unless FixedRate is set the rate adapts: it starts at
	// RatePerSecond, which it never exceeds, drops on Panther's push-back (a 429, a burst
	// of 5xx answers) and climbs back (see adaptive.go). A negative RatePerSecond means no
	// limit at all and no adapting (for measurements; the configuration file accepts only
	// a positive rate).
	RatePerSecond float64
	Burst         int
	// FixedRate keeps the rate at RatePerSecond whatever Panther answers (a 429's
	// Retry-After still pauses every call).
	FixedRate bool
	// Now is the limiter's clock (tests); default time.Now.
	Now func() time.Time
	// HTTPClient is used for requests when set. Its redirect policy is replaced by one that
	// refuses redirects (the API key must not follow a POST elsewhere).
	HTTPClient *http.Client
	// Observer, when set, is told of every finished call and every retry.
	Observer Observer
	// UserAgent is sent with every request. Default "panther-scim".
	UserAgent string
	// Logger, when set, gets one warning per distinct (operation, code, message) of the errors
	// Panther answered that the client could not classify, so that an operator sees Panther's
	// real wording; nil logs nothing.
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultTimeout       = 15 * time.Second
	DefaultMaxRetries    = 4
	DefaultMaxElapsed    = 60 * time.Second
	DefaultBaseBackoff   = 200 * time.Millisecond
	DefaultMaxBackoff    = 10 * time.Second
	DefaultMaxConcurrent = 8
	DefaultRatePerSecond = 50
)

// String describes the configuration without the token, so that a Config can be logged.
func (c Config) String() string {
	return fmt.Sprintf("panther.Config{URL:%q Token:%s Timeout:%s MaxRetries:%d MaxElapsed:%s "+
		"BaseBackoff:%s MaxBackoff:%s MaxConcurrent:%d RatePerSecond:%g Burst:%d FixedRate:%t}",
		c.URL, redactedToken(c.Token), c.Timeout, c.MaxRetries, c.MaxElapsed, c.BaseBackoff, c.MaxBackoff,
		c.MaxConcurrent, c.RatePerSecond, c.Burst, c.FixedRate)
}

// GoString is String for %#v, which would otherwise print the token.
func (c Config) GoString() string { return c.String() }

// LogValue is String for log/slog.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("url", c.URL),
		slog.String("token", redactedToken(c.Token)),
		slog.Duration("timeout", c.Timeout),
		slog.Int("maxRetries", c.MaxRetries),
		slog.Duration("maxElapsed", c.MaxElapsed),
		slog.Int("maxConcurrent", c.MaxConcurrent),
		slog.Float64("ratePerSecond", c.RatePerSecond),
		slog.Bool("fixedRate", c.FixedRate),
	)
}

func redactedToken(t string) string {
	if t == "" {
		return "(none)"
	}
	return "[REDACTED]"
}

// Client talks to Panther's GraphQL API. It is safe for concurrent use; all calls share its
// concurrency and rate limits.
type Client struct {
	cfg     Config
	http    *http.Client
	sem     chan struct{}
	limiter *adaptiveLimiter
	// probeLimiter is Ping's own small budget (probeRate): readiness probes never take
	// provisioning's slots or rate tokens, and cannot flood Panther either.
	probeLimiter *rate.Limiter
	stats        stats
	unknown      unclassifiedLog
	// listed is how many users the last listing returned (before the first, what
	// ExpectUsers said): the next one starts with room for as many, rather than
	// growing its slice (and copying it) 20 times.
	listed atomic.Int64
}

// probeRate bounds Ping: one call a second, no burst.
const probeRate = rate.Limit(1)

var _ provision.Panther = (*Client)(nil)

// New checks cfg, fills in defaults and returns a Client. It makes no request.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("panther: URL %q is not an absolute http(s) URL", cfg.URL)
	}
	if cfg.Token == "" {
		return nil, errNoToken
	}
	if strings.ContainsAny(cfg.Token, "\r\n\x00") {
		return nil, errors.New("panther: API token contains a line break or NUL")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	switch {
	case cfg.MaxRetries == 0:
		cfg.MaxRetries = DefaultMaxRetries
	case cfg.MaxRetries < 0:
		cfg.MaxRetries = 0
	}
	if cfg.MaxElapsed <= 0 {
		cfg.MaxElapsed = DefaultMaxElapsed
	}
	if cfg.BaseBackoff <= 0 {
		cfg.BaseBackoff = DefaultBaseBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.MaxBackoff < cfg.BaseBackoff {
		cfg.MaxBackoff = cfg.BaseBackoff
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.RatePerSecond == 0 {
		cfg.RatePerSecond = DefaultRatePerSecond
	}
	if cfg.Burst <= 0 {
		cfg.Burst = max(1, int(math.Ceil(cfg.RatePerSecond)))
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "panther-scim"
	}
	var hc http.Client
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = cfg.MaxConcurrent
		hc.Transport = tr
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	return &Client{
		cfg:          cfg,
		http:         &hc,
		sem:          make(chan struct{}, cfg.MaxConcurrent),
		limiter:      newAdaptiveLimiter(cfg.RatePerSecond, cfg.Burst, !cfg.FixedRate, cfg.Now, rateObserver(cfg.Observer)),
		probeLimiter: rate.NewLimiter(probeRate, 1),
	}, nil
}

func rateObserver(o Observer) func(float64) {
	if ro, ok := o.(RateObserver); ok {
		return ro.RateLimit
	}
	return nil
}

// RateLimit is the rate limit in force (calls per second; +Inf: none): RatePerSecond,
// or less while Panther pushes back.
func (c *Client) RateLimit() float64 { return c.limiter.Limit() }

// RateCeiling is the configured RatePerSecond (+Inf: none), which RateLimit never exceeds.
func (c *Client) RateCeiling() float64 { return c.limiter.Ceiling() }

// policy says when an operation answering a T may be sent again after a transient
// failure (429, 5xx, network error, timeout).
type policy[T any] struct {
	// idempotent: sending the operation twice has the effect of sending it once, so any
	// transient failure may be retried (queries, updateUser, deleteUser).
	idempotent bool
	// goneMeansDone (deleteUser): a not-found answer after an attempt that may have been
	// applied means that attempt did the work.
	goneMeansDone bool
	// lookup (inviteUser, createRole: not idempotent) finds out whether an attempt that may
	// have been applied was: found ends the call with success, answering what it found. It
	// runs before any re-send that follows such an attempt, and when a re-send reports a
	// conflict. Without lookup, a non-idempotent operation is re-sent only after failures
	// that prove it was not applied.
	lookup func(ctx context.Context) (found T, ok bool, err error)
}

// idempotent is the policy of a query or of an operation that may be sent twice.
func idempotent[T any]() policy[T] { return policy[T]{idempotent: true} }

// call is the one way an operation reaches Panther: it runs send (one attempt through the
// generated code, returning the operation's answer) until it succeeds, fails for good, or
// the retry budget (MaxRetries, MaxElapsed, ctx) runs out, following p; it counts the call
// and each retry. It returns the answer of the attempt that succeeded (or of p's lookup),
// else the zero T and the error, classified (*Error wrapping one of the sentinels).
func call[T any](ctx context.Context, c *Client, op string, p policy[T], send func(context.Context, graphql.Client) (T, error)) (_ T, err error) {
	start := time.Now()
	defer func() { c.observeCall(op, err, time.Since(start)) }()
	deadline := start.Add(c.cfg.MaxElapsed)
	callCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	var (
		zero           T
		mayHaveApplied bool  // some attempt reached Panther and may have been acted on
		needLookup     bool  // find out whether it was before sending again
		conflict       error // a re-send's conflict, reported if the lookup finds nothing
		lastErr        error
	)
	for n := 0; ; n++ {
		var reason string
		if needLookup {
			found, ok, lerr := p.lookup(callCtx)
			switch {
			case lerr == nil && ok:
				return found, nil
			case lerr == nil:
				// The earlier attempt did not create anything: sending again is safe.
				needLookup = false
				if conflict != nil {
					return zero, conflict
				}
			case provision.Retryable(lerr) && ctx.Err() == nil:
				lastErr, reason = lerr, "lookup_failed"
			default:
				return zero, lerr
			}
		}
		if !needLookup {
			out, err := send(callCtx, transport{c: c})
			if err == nil {
				return out, nil
			}
			lastErr = err
			switch {
			case p.goneMeansDone && mayHaveApplied && errors.Is(err, ErrNotFound):
				return zero, nil
			case p.lookup != nil && mayHaveApplied && errors.Is(err, ErrConflict):
				// Our own earlier attempt may be what now exists.
				conflict, needLookup = err, true
				continue
			case !provision.Retryable(err) || ctx.Err() != nil:
				return zero, err
			}
			var e *Error
			if errors.As(err, &e) {
				reason = e.reason
				if e.mayHaveApplied {
					mayHaveApplied = true
					if !p.idempotent {
						if p.lookup == nil {
							return zero, err
						}
						needLookup = true
					}
				}
			}
		}

		if n >= c.cfg.MaxRetries {
			return zero, lastErr
		}
		wait := c.backoff(n, lastErr)
		if time.Until(deadline) < wait {
			return zero, lastErr
		}
		c.observeRetry(op, reason)
		if serr := sleep(callCtx, wait); serr != nil {
			if ctx.Err() != nil {
				return zero, &Error{Op: op, Kind: ErrUnavailable, Message: "call cancelled while waiting to retry: " +
					lastErr.Error(), cause: ctx.Err()}
			}
			return zero, lastErr
		}
	}
}

// once runs send a single time and counts it, for lookups made inside another call's
// retry loop.
func once[T any](ctx context.Context, c *Client, op string, send func(context.Context, graphql.Client) (T, error)) (T, error) {
	start := time.Now()
	out, err := send(ctx, transport{c: c})
	c.observeCall(op, err, time.Since(start))
	return out, err
}

// ExpectUsers tells the client how many users its first listing is likely to hold (the
// bridge's own count of them) so that it makes room for them at once; after a listing,
// its count is the hint and this is ignored.
func (c *Client) ExpectUsers(n int) {
	if n > 0 {
		// An eighth more for the Panther users the bridge does not manage.
		c.listed.CompareAndSwap(0, int64(n+n/8))
	}
}

// Users lists every Panther user (Panther does not paginate). The answer is decoded as
// it arrives (userstream.go): the heap holds the users, not the answer.
func (c *Client) Users(ctx context.Context) ([]provision.PantherUser, error) {
	var buf []provision.PantherUser
	if n := c.listed.Load(); n > 0 {
		buf = make([]provision.PantherUser, 0, n)
	}
	us, err := call(ctx, c, "users", idempotent[[]provision.PantherUser](), func(ctx context.Context, _ graphql.Client) ([]provision.PantherUser, error) {
		var err error
		buf, err = c.streamUsers(ctx, buf[:0]) // a retry starts the list again, in the same memory
		return buf, err
	})
	if err == nil {
		c.listed.Store(int64(len(us)))
	}
	return us, err
}

// UserByID returns the Panther user with the id, or ErrNotFound.
func (c *Client) UserByID(ctx context.Context, id string) (provision.PantherUser, error) {
	if id == "" {
		return provision.PantherUser{}, &Error{Op: "userById", Kind: ErrInvalid, Message: "empty user id"}
	}
	return call(ctx, c, "userById", idempotent[provision.PantherUser](), func(ctx context.Context, gql graphql.Client) (provision.PantherUser, error) {
		resp, err := userById(ctx, gql, id)
		if err != nil {
			return provision.PantherUser{}, err
		}
		u := toUser(resp.UserById.userFields)
		return u, missing("userById", u.ID)
	})
}

// UserByEmail returns the Panther user with the email (Panther compares case-insensitively),
// or ErrNotFound.
func (c *Client) UserByEmail(ctx context.Context, email string) (provision.PantherUser, error) {
	if email == "" {
		return provision.PantherUser{}, &Error{Op: "userByEmail", Kind: ErrInvalid, Message: "empty email"}
	}
	return call(ctx, c, "userByEmail", idempotent[provision.PantherUser](), func(ctx context.Context, gql graphql.Client) (provision.PantherUser, error) {
		return getUserByEmail(ctx, gql, email)
	})
}

func getUserByEmail(ctx context.Context, gql graphql.Client, email string) (provision.PantherUser, error) {
	resp, err := userByEmail(ctx, gql, email)
	if err != nil {
		return provision.PantherUser{}, err
	}
	return toUser(resp.UserByEmail.userFields), missing("userByEmail", resp.UserByEmail.Id)
}

// missing catches an answer without an object (data null and no error, which the schema's
// non-null types forbid but a server could still send), so that no caller ever gets a user or
// role with an empty id. For a lookup that means not found; after a mutation nothing is known,
// so the error has no class.
func missing(op, id string) error {
	if id != "" {
		return nil
	}
	e := &Error{Op: op, StatusCode: http.StatusOK, Message: "Panther answered neither an object nor an error"}
	if op == "userById" || op == "userByEmail" || op == "roleById" || op == "roleByName" {
		e.Kind = ErrNotFound
	}
	return e
}

// InviteUser creates a Panther user (status INVITED; Panther emails the invitation). A user
// with the email already existing is ErrConflict; an unknown role or a bad email ErrInvalid.
//
// Retry safety: a second invite after one that Panther applied would fail with a conflict, or
// worse send a second invitation, so the invite is re-sent blindly only when the failed attempt
// provably was not applied: the request was never written (refused connection, DNS failure,
// no free slot), or Panther answered 429 or 503, which reject a request before processing it.
// After an ambiguous failure (timeout or connection reset after sending, 500/502/504, an
// unreadable answer) the user is first looked up by email: if it exists now and Panther
// created it after the first attempt was sent, the invite took effect and that user is
// returned (one created before is a duplicate, ErrConflict); if not, the invite is sent again. A conflict on such a
// re-send (the first attempt landed after the lookup) is resolved by the same lookup.
func (c *Client) InviteUser(ctx context.Context, in provision.InviteInput) (provision.PantherUser, error) {
	input := InviteUserInput{
		Email:      in.Email,
		GivenName:  in.GivenName,
		FamilyName: in.FamilyName,
		Role:       roleInput(in.Role),
	}
	sent := time.Now()
	p := policy[provision.PantherUser]{lookup: func(ctx context.Context) (provision.PantherUser, bool, error) {
		u, err := c.lookupUser(ctx, in.Email)
		if err != nil || u.ID == "" {
			return provision.PantherUser{}, false, err
		}
		if u.CreatedAt.IsZero() || u.CreatedAt.Before(sent) {
			// It existed before the invite went out, so the invite did not create it:
			// a duplicate, never a user to hand back as invited (the caller decides
			// whether it may be adopted).
			return provision.PantherUser{}, false, &Error{Op: "inviteUser", Kind: ErrConflict, StatusCode: http.StatusOK,
				Message: "a Panther user with this email existed before the invite was sent"}
		}
		return u, true, nil
	}}
	return call(ctx, c, "inviteUser", p, func(ctx context.Context, gql graphql.Client) (provision.PantherUser, error) {
		resp, err := inviteUser(ctx, gql, input)
		if err != nil {
			return provision.PantherUser{}, err
		}
		u := toUser(resp.InviteUser.User.userFields)
		return u, missing("inviteUser", u.ID)
	})
}

// lookupUser makes one userByEmail attempt for a retry decision: the zero user and no error
// when Panther has no such user.
func (c *Client) lookupUser(ctx context.Context, email string) (provision.PantherUser, error) {
	u, err := once(ctx, c, "userByEmail", func(ctx context.Context, gql graphql.Client) (provision.PantherUser, error) {
		return getUserByEmail(ctx, gql, email)
	})
	switch {
	case errors.Is(err, ErrNotFound):
		return provision.PantherUser{}, nil
	case err != nil:
		return provision.PantherUser{}, fmt.Errorf("checking whether an unanswered invite of %s took effect: %w", email, err)
	}
	return u, nil
}

// UpdateUser changes the non-nil fields of the user in.ID and returns the user as it is now.
// ErrNotFound for an unknown id; ErrInvalid for a bad email or an unknown role.
//
// Retry safety: every field is set to an absolute value, so applying the same update twice
// leaves the user as applying it once; it is retried after any transient failure. (A change
// made by someone else between the two attempts is overwritten, as it would be by a later call.)
func (c *Client) UpdateUser(ctx context.Context, in provision.UpdateInput) (provision.PantherUser, error) {
	if in.ID == "" {
		return provision.PantherUser{}, &Error{Op: "updateUser", Kind: ErrInvalid, Message: "empty user id"}
	}
	if in.Email == nil && in.GivenName == nil && in.FamilyName == nil && in.Role == nil {
		// Nothing to change: answer with the user as it is rather than send an empty update.
		return c.UserByID(ctx, in.ID)
	}
	input := UpdateUserInput{Id: in.ID, Email: in.Email, GivenName: in.GivenName, FamilyName: in.FamilyName}
	if in.Role != nil {
		r := roleInput(*in.Role)
		input.Role = &r
	}
	return call(ctx, c, "updateUser", idempotent[provision.PantherUser](), func(ctx context.Context, gql graphql.Client) (provision.PantherUser, error) {
		resp, err := updateUser(ctx, gql, input)
		if err != nil {
			return provision.PantherUser{}, err
		}
		u := toUser(resp.UpdateUser.User.userFields)
		return u, missing("updateUser", u.ID)
	})
}

// DeleteUser removes the Panther user with the id; ErrNotFound if there is none.
//
// Retry safety: deleting is idempotent in effect, so it is retried after any transient
// failure. When an earlier attempt may have been applied, a not-found answer to the retry
// means that attempt deleted the user, and the call succeeds.
func (c *Client) DeleteUser(ctx context.Context, id string) error {
	if id == "" {
		return &Error{Op: "deleteUser", Kind: ErrInvalid, Message: "empty user id"}
	}
	_, err := call(ctx, c, "deleteUser", policy[*deleteUserResponse]{idempotent: true, goneMeansDone: true},
		func(ctx context.Context, gql graphql.Client) (*deleteUserResponse, error) {
			return deleteUser(ctx, gql, DeleteUserInput{Id: id})
		})
	return err
}

// Roles lists every Panther role.
func (c *Client) Roles(ctx context.Context) ([]provision.PantherRole, error) {
	return call(ctx, c, "roles", idempotent[[]provision.PantherRole](), func(ctx context.Context, gql graphql.Client) ([]provision.PantherRole, error) {
		resp, err := roles(ctx, gql)
		if err != nil {
			return nil, err
		}
		out := make([]provision.PantherRole, 0, len(resp.Roles))
		for _, r := range resp.Roles {
			out = append(out, toRole(r.roleFields))
		}
		return out, nil
	})
}

// RoleByID returns the role with the id, or ErrNotFound.
func (c *Client) RoleByID(ctx context.Context, id string) (provision.PantherRole, error) {
	if id == "" {
		return provision.PantherRole{}, &Error{Op: "roleById", Kind: ErrInvalid, Message: "empty role id"}
	}
	return call(ctx, c, "roleById", idempotent[provision.PantherRole](), func(ctx context.Context, gql graphql.Client) (provision.PantherRole, error) {
		resp, err := roleById(ctx, gql, id)
		if err != nil {
			return provision.PantherRole{}, err
		}
		r := toRole(resp.RoleById.roleFields)
		return r, missing("roleById", r.ID)
	})
}

// RoleByName returns the role with the name (Panther compares case-insensitively), or ErrNotFound.
func (c *Client) RoleByName(ctx context.Context, name string) (provision.PantherRole, error) {
	if name == "" {
		return provision.PantherRole{}, &Error{Op: "roleByName", Kind: ErrInvalid, Message: "empty role name"}
	}
	return call(ctx, c, "roleByName", idempotent[provision.PantherRole](), func(ctx context.Context, gql graphql.Client) (provision.PantherRole, error) {
		return getRoleByName(ctx, gql, name)
	})
}

func getRoleByName(ctx context.Context, gql graphql.Client, name string) (provision.PantherRole, error) {
	resp, err := roleByName(ctx, gql, name)
	if err != nil {
		return provision.PantherRole{}, err
	}
	return toRole(resp.RoleByName.roleFields), missing("roleByName", resp.RoleByName.Id)
}

// CreateRole creates a role with the permissions (Panther's Permission names, e.g. "UserRead").
// A role with the name already existing is ErrConflict; an unknown permission ErrInvalid.
//
// Retry safety: like InviteUser. A create is re-sent blindly only after a failure that proves
// it was not applied; after an ambiguous one the role is looked up by name first, and returned
// if it exists.
func (c *Client) CreateRole(ctx context.Context, name string, permissions []string) (provision.PantherRole, error) {
	if permissions == nil {
		permissions = []string{}
	}
	p := policy[provision.PantherRole]{lookup: func(ctx context.Context) (provision.PantherRole, bool, error) {
		r, err := once(ctx, c, "roleByName", func(ctx context.Context, gql graphql.Client) (provision.PantherRole, error) {
			return getRoleByName(ctx, gql, name)
		})
		switch {
		case errors.Is(err, ErrNotFound):
			return provision.PantherRole{}, false, nil
		case err != nil:
			return provision.PantherRole{}, false, fmt.Errorf("checking whether an unanswered createRole %s took effect: %w", name, err)
		}
		return r, true, nil
	}}
	return call(ctx, c, "createRole", p, func(ctx context.Context, gql graphql.Client) (provision.PantherRole, error) {
		resp, err := createRole(ctx, gql, CreateRoleInput{Name: name, Permissions: permissions})
		if err != nil {
			return provision.PantherRole{}, err
		}
		r := toRole(resp.CreateRole.Role.roleFields)
		return r, missing("createRole", r.ID)
	})
}

// Ping makes one roles query, without retries, to tell whether Panther is reachable and
// accepts the token (for readiness checks). It spends none of the calls' budget: it
// takes no connection slot and no token of the shared rate limit, so that probes never
// delay provisioning, and it has a budget of its own of one call a second.
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	start := time.Now()
	_, err := roles(ctx, transport{c: c, probe: true})
	c.observeCall("roles", err, time.Since(start))
	return err
}

func roleInput(r provision.RoleRef) UserRoleInput {
	if r.ByID {
		return UserRoleInput{Kind: UserRoleInputKindId, Value: r.Value}
	}
	return UserRoleInput{Kind: UserRoleInputKindName, Value: r.Value}
}

func toUser(f userFields) provision.PantherUser {
	return provision.PantherUser{
		ID:         f.Id,
		Email:      f.Email,
		GivenName:  f.GivenName,
		FamilyName: f.FamilyName,
		RoleID:     f.Role.Id,
		RoleName:   f.Role.Name,
		Admin:      provision.HoldsUserModify(f.Role.Permissions),
		Status:     f.Status,
		Enabled:    f.Enabled,
		CreatedAt:  parseTime(f.CreatedAt),
	}
}

func toRole(f roleFields) provision.PantherRole {
	perms := f.Permissions
	if perms == nil {
		perms = []string{}
	}
	return provision.PantherRole{ID: f.Id, Name: f.Name, Permissions: perms}
}

// parseTime reads Panther's DateTime (ISO 8601); the zero time when it cannot.
func parseTime(s string) time.Time {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}
