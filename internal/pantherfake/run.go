package pantherfake

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// APIKeyEnv is the environment variable Run reads the API key from when --api-key is not given.
const APIKeyEnv = "PANTHER_FAKE_API_KEY"

// LoadSchema parses and validates a GraphQL schema in SDL (the built-in scalars and
// introspection types are added), for Options.Schema.
func LoadSchema(name, sdl string) (*ast.Schema, error) {
	schema, err := gqlparser.LoadSchema(&ast.Source{Name: name, Input: sdl})
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	return schema, nil
}

// SourceSecretEnv is the environment variable Run reads the HTTP source's secret from
// when --source-secret is not given.
const SourceSecretEnv = "PANTHER_FAKE_SOURCE_SECRET"

// Run parses args (the flags of the fake-panther command, without the program name), serves
// the fake until ctx is done, then shuts it down. It prints where it listens to stdout.
func Run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fake-panther", flag.ContinueOnError)
	fs.SetOutput(stdout)
	addr := fs.String("addr", "127.0.0.1:8081", "address to listen on")
	apiKey := fs.String("api-key", "", "X-API-Key value to require (default: $"+APIKeyEnv+")")
	latency := fs.Duration("latency", 0, "fixed delay added to every answer")
	jitter := fs.Duration("jitter", 0, "random extra delay, up to this much")
	errorRate := fs.Float64("error-rate", 0, "fraction of requests answered 5xx without processing (0..1)")
	errorStatus := fs.Int("error-status", http.StatusInternalServerError, "HTTP status of --error-rate failures")
	rateLimitRate := fs.Float64("rate-limit-rate", 0, "fraction of requests answered 429 (0..1)")
	rateCeiling := fs.Float64("rate-ceiling", 0, "answer 429 to requests above this many per second (a token bucket with one second's burst; 0: none)")
	retryAfter := fs.Duration("retry-after", time.Second, "Retry-After sent with 429 and 503 answers")
	seed := fs.Int64("seed", 0, "seed for fault injection and ids (0: from the clock)")
	schemaFile := fs.String("schema", "", "GraphQL SDL file to serve instead of Panther's schema (to try panther-scim check against a changed API)")
	noIntrospection := fs.Bool("no-introspection", false, "refuse __schema and __type queries, as a server with introspection off does")
	srcAuth := fs.String("source-auth", SourceAuthNone, "authentication of the HTTP log source at "+HTTPSourcePath+"<id>: none, sharedSecret, hmac or bearer")
	srcHeader := fs.String("source-header", "", "header holding the shared secret or the HMAC signature (sharedSecret, hmac)")
	srcAlg := fs.String("source-hmac-alg", "sha256", "HMAC algorithm (hmac): sha1, sha256, sha384 or sha512")
	srcSecret := fs.String("source-secret", "", "the HTTP source's secret, HMAC key or bearer token (default: $"+SourceSecretEnv+")")
	dupCode := fs.String("duplicate-code", "", "answer a duplicate email with this error code instead of ALREADY_EXISTS")
	dupMessage := fs.String("duplicate-message", "", "answer a duplicate email with this message (Panther's wording is not documented)")
	fs.Usage = func() {
		fmt.Fprintf(stdout, "Usage: fake-panther [flags]\n\nServes an in-memory Panther users-and-roles GraphQL API at %s, and an HTTP log source at %s<id>.\n\n", Path, HTTPSourcePath)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("fake-panther: unexpected arguments %q", fs.Args())
	}
	if *apiKey == "" {
		*apiKey = os.Getenv(APIKeyEnv)
	}
	if *apiKey == "" {
		return fmt.Errorf("fake-panther: --api-key or $%s is required", APIKeyEnv)
	}
	for name, p := range map[string]float64{"--error-rate": *errorRate, "--rate-limit-rate": *rateLimitRate} {
		if p < 0 || p > 1 {
			return fmt.Errorf("fake-panther: %s must be between 0 and 1", name)
		}
	}
	if *errorStatus < 500 || *errorStatus > 599 {
		return errors.New("fake-panther: --error-status must be a 5xx status")
	}
	if *srcSecret == "" {
		*srcSecret = os.Getenv(SourceSecretEnv)
	}
	source := HTTPSourceAuth{Method: *srcAuth, Header: *srcHeader, Algorithm: *srcAlg, Secret: *srcSecret}
	if err := source.Validate(); err != nil {
		return fmt.Errorf("fake-panther: HTTP source: %w", err)
	}
	ra := *retryAfter
	if ra == 0 {
		ra = -1 // Options treats 0 as "default"; the flag's 0 means "no header"
	}

	opts := Options{
		APIKey: *apiKey, Latency: *latency, Jitter: *jitter, ErrorRate: *errorRate, ErrorStatus: *errorStatus,
		RateLimitRate: *rateLimitRate, RetryAfter: ra, Seed: *seed, RefuseIntrospection: *noIntrospection,
		HTTPSource: source, DuplicateCode: *dupCode, DuplicateMessage: *dupMessage, RateCeiling: *rateCeiling,
		// A double that runs for hours keeps a bounded call log.
		MaxCallLog: 10000,
	}
	if *schemaFile != "" {
		sdl, err := os.ReadFile(*schemaFile)
		if err != nil {
			return fmt.Errorf("fake-panther: %w", err)
		}
		if opts.Schema, err = LoadSchema(*schemaFile, string(sdl)); err != nil {
			return fmt.Errorf("fake-panther: %w", err)
		}
	}
	s := New(opts)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("fake-panther: %w", err)
	}
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	fmt.Fprintf(stdout, "fake-panther: serving Panther's users-and-roles GraphQL API at http://%s%s (X-API-Key required)\n",
		ln.Addr(), Path)
	fmt.Fprintf(stdout, "fake-panther: HTTP log source at http://%s%saudit (any source id; authentication: %s)\n",
		ln.Addr(), HTTPSourcePath, source.Method)

	select {
	case err := <-served:
		return fmt.Errorf("fake-panther: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		hs.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("fake-panther: %w", err)
	}
	return nil
}
