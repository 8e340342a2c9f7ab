package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// adminTokenEnv holds the admin token the --url commands send.
const adminTokenEnv = "PANTHER_SCIM_ADMIN_TOKEN"

// adminTimeout bounds one admin request (a reconcile of a large directory takes a while).
const adminTimeout = 10 * time.Minute

// adminRequest sends method base/admin/<path>?query with the admin token and returns the
// answer when it is 2xx; otherwise an error that says what to fix.
func adminRequest(ctx context.Context, method, base, path string, query url.Values) (*http.Response, error) {
	tok := strings.TrimSpace(os.Getenv(adminTokenEnv))
	if tok == "" {
		return nil, fmt.Errorf("$%s is not set: put an admin token in it (one whose hash is in auth.adminTokenHashes, or in the variable or file the config names; the IdP's SCIM token is not one)", adminTokenEnv)
	}
	u, err := url.Parse(strings.TrimRight(base, "/") + "/admin/" + path)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--url %q is not an http(s) base URL such as http://127.0.0.1:8080", base)
	}
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := (&http.Client{Timeout: adminTimeout}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u.Path, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	var body struct {
		Error  string `json:"error"`
		Detail string `json:"detail"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = json.Unmarshal(raw, &body)
	msg := body.Error
	if msg == "" {
		msg = body.Detail
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return nil, fmt.Errorf("%s %s: %s: $%s is not an admin token of that server (a SCIM token is not one)", method, u.Path, resp.Status, adminTokenEnv)
	case http.StatusNotFound:
		if msg == "" {
			msg = "no such endpoint (with server.opsAddr set, the admin endpoints are on the ops listener)"
		}
	}
	return nil, fmt.Errorf("%s %s: %s: %s", method, u.Path, resp.Status, msg)
}

// adminAnswer sends method base/admin/<path>?query with the admin token (adminRequest)
// and decodes the JSON answer into a T; what starts the error of an answer that does
// not decode.
func adminAnswer[T any](ctx context.Context, method, base, path string, query url.Values, what string) (T, error) {
	var out T
	resp, err := adminRequest(ctx, method, base, path, query)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return out, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// printJSON writes v as indented JSON, for the commands' --json.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// parseInterspersed parses flags before and after the positional arguments, so that
// `explain ada@example.com --json` works as `explain --json ada@example.com` does.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func cmdExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", os.Getenv("PANTHER_SCIM_CONFIG"), "config file (YAML), to read the stopped server's store")
	base := fs.String("url", "", "ask a running server instead: its base URL (the ops listener's when server.opsAddr is set); admin token from $"+adminTokenEnv)
	asJSON := fs.Bool("json", false, "print the explanation as JSON")
	audit := fs.Int("audit", provision.DefaultExplainAudit, "how many of the user's last audit entries to show")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: panther-scim explain [--url BASE | --config FILE] [--json] USER\n\nUSER is a SCIM id, a userName or an email.")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return errSilent
	}
	who := pos[0]
	var ex provision.Explanation
	if *base != "" {
		ex, err = adminAnswer[provision.Explanation](ctx, http.MethodGet, *base, "explain",
			url.Values{"user": {who}, "audit": {strconv.Itoa(*audit)}}, "reading the explanation")
	} else {
		err = withService(*cfgPath, stderr, func(svc *provision.Service) (err error) {
			ex, err = svc.Explain(ctx, who, *audit)
			return err
		})
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, ex)
	}
	printExplanation(stdout, ex)
	return nil
}

// printExplanation writes an Explanation for people, one aspect per line.
func printExplanation(w io.Writer, ex provision.Explanation) {
	u := ex.User
	state := "active"
	if !u.Active {
		state = "inactive (active=false)"
	}
	fmt.Fprintf(w, "user      %s (SCIM id %s", u.UserName, u.ID)
	if u.ExternalID != "" {
		fmt.Fprintf(w, ", externalId %s", u.ExternalID)
	}
	fmt.Fprintf(w, "), %s\n", state)
	emails := strings.Join(u.Emails, ", ")
	if emails == "" {
		emails = "(none)"
	}
	fmt.Fprintf(w, "emails    %s; Panther email %s\n", emails, u.Email)
	var groups []string
	for _, g := range ex.Groups {
		rule := "no rule"
		if g.Rule > 0 {
			rule = fmt.Sprintf("rule %d", g.Rule)
		}
		groups = append(groups, fmt.Sprintf("%s (%s)", g.DisplayName, rule))
	}
	if len(groups) == 0 {
		groups = []string{"(none)"}
	}
	fmt.Fprintf(w, "groups    %s\n", strings.Join(groups, ", "))
	if r := ex.MatchedRule; r != nil {
		key := fmt.Sprintf("group %q", r.Group)
		if r.ExternalID != "" {
			key = fmt.Sprintf("externalId %q", r.ExternalID)
		}
		fmt.Fprintf(w, "rule      rule %d: %s -> %s (matched the group %q)\n", r.Number, key, r.Role, r.MatchedGroup)
	} else {
		fmt.Fprintln(w, "rule      none")
	}
	role := ex.Role
	if role == "" {
		role = "no access"
	}
	fmt.Fprintf(w, "role      %s: %s\n", role, ex.Reason)
	switch p := ex.Panther; {
	case p != nil && p.Linked:
		fmt.Fprintf(w, "panther   linked to %s (%s), role %s in Panther, status %s\n", p.ID, p.Email, p.Role, p.Status)
	case p != nil:
		fmt.Fprintf(w, "panther   not linked; Panther has %s (%s, role %s), which panther-scim does not manage yet\n", p.Email, p.ID, p.Role)
	case ex.PantherError != "":
		fmt.Fprintf(w, "panther   %s\n", ex.PantherError)
	default:
		fmt.Fprintln(w, "panther   no Panther user")
	}
	if len(ex.PendingIntents) == 0 {
		fmt.Fprintln(w, "pending   none")
	}
	for _, in := range ex.PendingIntents {
		what := "a change waiting for Panther"
		if in.Remove != nil {
			what = "a removal from Panther"
		}
		fmt.Fprintf(w, "pending   %s since %s, %d attempts", what, in.Since.UTC().Format(time.RFC3339), in.Attempts)
		if in.LastError != "" {
			fmt.Fprintf(w, ", last error: %s", in.LastError)
		}
		if in.Revert != nil {
			fmt.Fprintf(w, "; if refused, the record is put back as it was at version %d", in.Revert.Version)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "audit     %d entries (newest last)\n", len(ex.Audit))
	for _, e := range ex.Audit {
		fmt.Fprintf(w, "  %s  %-16s %s", e.Time.UTC().Format(time.RFC3339), e.Action, e.Outcome)
		if e.Actor != "" {
			fmt.Fprintf(w, "  by %s", e.Actor)
		}
		if r := e.After["role"]; r != "" {
			fmt.Fprintf(w, "  role %s", r)
		}
		fmt.Fprintln(w)
	}
}

// onlineAudit prints a running server's audit trail, as the file mode does.
func onlineAudit(ctx context.Context, base string, since time.Duration, user string, stdout io.Writer) error {
	q := url.Values{}
	if since > 0 {
		q.Set("since", since.String())
	}
	if user != "" {
		q.Set("user", user)
	}
	resp, err := adminRequest(ctx, http.MethodGet, base, "audit", q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(stdout, resp.Body)
	return err
}

// onlineReconcile asks a running server for its plan (dry) or to reconcile now.
func onlineReconcile(ctx context.Context, base string, dry bool) (provision.Plan, error) {
	method := http.MethodPost
	if dry {
		method = http.MethodGet
	}
	return adminAnswer[provision.Plan](ctx, method, base, "reconcile", nil, "reading the plan")
}
