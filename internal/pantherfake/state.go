package pantherfake

import (
	"cmp"
	"fmt"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/panther-scim/panther-scim/internal/provision"
)

// user is a Panther user as the fake stores it.
type user struct {
	id         string
	email      string
	givenName  string
	familyName string
	roleID     string
	createdAt  time.Time
	// enabled is false for a user disabled in Panther's console (the API cannot).
	enabled bool
	seq     int     // creation order, for a stable users list
	srv     *Server // where its role is
}

// role is a Panther role as the fake stores it.
type role struct {
	id                string
	name              string
	permissions       []string
	logTypeAccess     []string
	logTypeAccessKind string
	createdAt         time.Time
	updatedAt         time.Time
	// byToken: created or last changed through the API, so updatedBy is the API token.
	byToken bool
	srv     *Server // whose API token that is
}

// Panther's default roles. Admin gets every permission in the schema's Permission enum.
var defaultRoles = []struct {
	name        string
	permissions []string
}{
	{"Admin", nil},
	{"Analyst", []string{
		"AlertModify", "AlertRead", "BulkUpload", "CloudsecSourceRead", "DataAnalyticsModify", "DataAnalyticsRead",
		"DestinationRead", "GeneralSettingsRead", "LogSourceRead", "LookupRead", "PolicyModify", "PolicyRead",
		"ResourceRead", "RuleModify", "RuleRead", "RunPantherAI", "SummaryRead",
	}},
	{"AnalystReadOnly", []string{
		"AlertRead", "CloudsecSourceRead", "DataAnalyticsRead", "DestinationRead", "GeneralSettingsRead",
		"LogSourceRead", "LookupRead", "PolicyRead", "ResourceRead", "RuleRead", "SummaryRead",
	}},
}

// validEmail accepts a plain address: local@domain with a dotted domain, no display name, no
// surrounding spaces (the Email scalar's rules as Panther applies them).
func validEmail(s string) bool {
	if s == "" || len(s) > 254 || strings.TrimSpace(s) != s {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	domain := s[at+1:]
	return at > 0 && strings.Contains(domain, ".") && !strings.HasPrefix(domain, ".") &&
		!strings.HasSuffix(domain, ".") && !strings.Contains(domain, "..")
}

// The methods below run with s.mu held.

func (s *Server) userByEmailLocked(email string) *user {
	return s.users[s.emailIndex[strings.ToLower(email)]]
}

func (s *Server) roleByNameLocked(name string) *role {
	for _, r := range s.roles {
		if strings.EqualFold(r.name, name) {
			return r
		}
	}
	return nil
}

// resolveRoleRef finds the role a UserRoleInput names ({kind: ID|NAME, value}).
func (s *Server) resolveRoleRef(ref map[string]any) (*role, error) {
	kind, _ := ref["kind"].(string)
	value, _ := ref["value"].(string)
	var r *role
	switch strings.ToUpper(kind) {
	case "ID":
		r = s.roles[value]
	case "NAME":
		r = s.roleByNameLocked(value)
	}
	if r == nil {
		return nil, errorf(codeBadUserInput, "role %s %q does not exist", strings.ToLower(kind), value)
	}
	return r, nil
}

func (s *Server) newUserLocked(email, given, family string, r *role) (*user, error) {
	switch {
	case !validEmail(email):
		return nil, errorf(codeBadUserInput, "invalid email address %q", email)
	case strings.TrimSpace(given) == "":
		return nil, errorf(codeBadUserInput, "givenName must not be empty")
	case strings.TrimSpace(family) == "":
		return nil, errorf(codeBadUserInput, "familyName must not be empty")
	case s.userByEmailLocked(email) != nil:
		return nil, s.duplicateLocked(email)
	}
	s.seq++
	u := &user{
		id: s.newID(), email: email, givenName: given, familyName: family, roleID: r.id,
		createdAt: s.now().UTC(), enabled: true, seq: s.seq, srv: s,
	}
	s.users[u.id] = u
	s.byAge = nil
	s.emailIndex[strings.ToLower(email)] = u.id
	return u, nil
}

// duplicateLocked is the error for an email another user holds: Panther's documented
// conflict, or the code and message SetDuplicateAnswer chose (Panther's real wording is
// not documented, and the bridge must cope with words it does not know).
func (s *Server) duplicateLocked(email string) *fieldError {
	if s.dupCode != "" || s.dupMessage != "" {
		return errorf(s.dupCode, "%s", s.dupMessage)
	}
	return errorf(codeAlreadyExists, "a user with email %s already exists", email)
}

func (s *Server) newRoleLocked(name string, permissions []string, byToken bool) (*role, error) {
	if strings.TrimSpace(name) == "" {
		return nil, errorf(codeBadUserInput, "role name must not be empty")
	}
	if s.roleByNameLocked(name) != nil {
		return nil, errorf(codeAlreadyExists, "a role named %q already exists", name)
	}
	for _, p := range permissions {
		if !s.permissions[p] {
			return nil, errorf(codeBadUserInput, "%q is not a valid Permission", p)
		}
	}
	now := s.now().UTC()
	r := &role{
		id: s.newID(), name: name, permissions: slices.Clone(permissions), logTypeAccessKind: "ALLOW_ALL",
		createdAt: now, updatedAt: now, byToken: byToken, srv: s,
	}
	s.roles[r.id] = r
	return r, nil
}

// sortedUsersLocked returns the users oldest first. The slice is shared until a user is
// added or removed: callers only read it.
func (s *Server) sortedUsersLocked() []*user {
	if s.byAge != nil {
		return s.byAge
	}
	us := make([]*user, 0, len(s.users))
	for _, u := range s.users {
		us = append(us, u)
	}
	slices.SortFunc(us, func(a, b *user) int { return cmp.Compare(a.seq, b.seq) })
	s.byAge = us
	return us
}

func (s *Server) toDomainUser(u *user) provision.PantherUser {
	r := s.roles[u.roleID]
	pu := provision.PantherUser{
		ID: u.id, Email: u.email, GivenName: u.givenName, FamilyName: u.familyName,
		RoleID: u.roleID, Status: statusInvited, Enabled: u.enabled, CreatedAt: u.createdAt,
	}
	if r != nil {
		pu.RoleName = r.name
		pu.Admin = provision.HoldsUserModify(r.permissions)
	}
	return pu
}

func toDomainRole(r *role) provision.PantherRole {
	return provision.PantherRole{ID: r.id, Name: r.name, Permissions: slices.Clone(r.permissions)}
}

// statusInvited is the status of every user the fake knows: none ever logs in.
const statusInvited = "INVITED"

// ---- GraphQL objects ----

func strList(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func timeString(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// userObj is a User. It and roleObj hold one pointer, so that an interface holds them
// without an allocation: a users listing makes one of each per user.
type userObj struct{ u *user }

func (o userObj) typeName() string { return "User" }

func (o userObj) field(name string, _ map[string]any) any {
	switch name {
	case "createdAt":
		return timeString(o.u.createdAt)
	case "email":
		return o.u.email
	case "enabled":
		// Panther's public API cannot disable a user; the console can (SetUserEnabled).
		return o.u.enabled
	case "familyName":
		return o.u.familyName
	case "givenName":
		return o.u.givenName
	case "id":
		return o.u.id
	case "lastLoggedInAt":
		return nil
	case "role":
		if r := o.u.srv.roles[o.u.roleID]; r != nil {
			return roleObj{r}
		}
		return nil
	case "status":
		return statusInvited
	}
	return nil
}

// appendLeaf writes the scalar fields of field without boxing them (leafAppender).
func (o userObj) appendLeaf(w *jsonOut, name string, list bool) bool {
	if list {
		return false
	}
	switch name {
	case "createdAt":
		w.b = appendTime(w.b, o.u.createdAt)
	case "email":
		w.b = appendJSONString(w.b, o.u.email)
	case "enabled":
		w.b = strconv.AppendBool(w.b, o.u.enabled)
	case "familyName":
		w.b = appendJSONString(w.b, o.u.familyName)
	case "givenName":
		w.b = appendJSONString(w.b, o.u.givenName)
	case "id":
		w.b = appendJSONString(w.b, o.u.id)
	case "status":
		w.b = appendJSONString(w.b, statusInvited)
	default:
		return false
	}
	return true
}

type roleObj struct{ r *role }

func (o roleObj) typeName() string { return "Role" }

func (o roleObj) field(name string, _ map[string]any) any {
	switch name {
	case "createdAt":
		return timeString(o.r.createdAt)
	case "id":
		return o.r.id
	case "logTypeAccess":
		if o.r.logTypeAccess == nil {
			return nil
		}
		return strList(o.r.logTypeAccess)
	case "logTypeAccessKind":
		return o.r.logTypeAccessKind
	case "name":
		return o.r.name
	case "permissions":
		return strList(o.r.permissions)
	case "updatedAt":
		return timeString(o.r.updatedAt)
	case "updatedBy":
		if o.r.byToken {
			return tokenObj{o.r.srv}
		}
		return nil
	}
	return nil
}

// appendLeaf writes the scalar fields of field without boxing them (leafAppender), and a
// role's permissions once per root field: every user of the role repeats them.
func (o roleObj) appendLeaf(w *jsonOut, name string, list bool) bool {
	switch {
	case name == "permissions": // a list, or a scalar holding one: written alike

		if b, ok := w.perms[o.r]; ok {
			w.b = append(w.b, b...)
			return true
		}
		start := len(w.b)
		w.b = appendStrings(w.b, o.r.permissions)
		if w.perms == nil {
			w.perms = map[*role][]byte{}
		}
		w.perms[o.r] = slices.Clone(w.b[start:])
	case name == "id" && !list:
		w.b = appendJSONString(w.b, o.r.id)
	case name == "name" && !list:
		w.b = appendJSONString(w.b, o.r.name)
	default:
		return false
	}
	return true
}

// tokenObj is the API token the fake's callers use: the Actor behind API changes.
type tokenObj struct{ s *Server }

func (o tokenObj) typeName() string { return "APIToken" }

func (o tokenObj) field(name string, _ map[string]any) any {
	switch name {
	case "allowedCIDRBlocks":
		return []any{}
	case "createdAt":
		return timeString(o.s.started)
	case "createdBy":
		return userObj{o.s.owner}
	case "id":
		return o.s.tokenID
	case "lastUsedAt":
		return timeString(o.s.now())
	case "name":
		return "pantherfake"
	case "permissions":
		return []any{"UserModify", "UserRead"}
	}
	return nil // expiresAt, rotatedAt, rotatedBy, updatedAt, updatedBy, value
}

// ---- root resolvers ----

func (s *Server) rootResolvers() map[string]rootResolver {
	return map[string]rootResolver{
		"users":       s.resolveUsers,
		"userById":    s.resolveUserByID,
		"userByEmail": s.resolveUserByEmail,
		"roles":       s.resolveRoles,
		"roleById":    s.resolveRoleByID,
		"roleByName":  s.resolveRoleByName,
		"inviteUser":  s.resolveInviteUser,
		"updateUser":  s.resolveUpdateUser,
		"deleteUser":  s.resolveDeleteUser,
		"createRole":  s.resolveCreateRole,
		"updateRole":  s.resolveUpdateRole,
		"deleteRole":  s.resolveDeleteRole,
	}
}

func (s *Server) resolveUsers(map[string]any) (any, error) {
	us := s.sortedUsersLocked()
	out := make([]any, len(us))
	for i, u := range us {
		out[i] = userObj{u}
	}
	return out, nil
}

func (s *Server) resolveUserByID(args map[string]any) (any, error) {
	id := fmt.Sprint(args["id"])
	u := s.users[id]
	if u == nil {
		return nil, errorf(codeNotFound, "user %s not found", id)
	}
	return userObj{u}, nil
}

func (s *Server) resolveUserByEmail(args map[string]any) (any, error) {
	email, _ := args["email"].(string)
	if !validEmail(email) {
		return nil, errorf(codeBadUserInput, "invalid email address %q", email)
	}
	u := s.userByEmailLocked(email)
	if u == nil {
		return nil, errorf(codeNotFound, "user with email %s not found", email)
	}
	return userObj{u}, nil
}

func (s *Server) resolveRoles(args map[string]any) (any, error) {
	in, _ := args["input"].(map[string]any)
	contains, _ := in["nameContains"].(string)
	dir, _ := in["sortDir"].(string)
	var rs []*role
	for _, r := range s.roles {
		if contains == "" || strings.Contains(strings.ToLower(r.name), strings.ToLower(contains)) {
			rs = append(rs, r)
		}
	}
	slices.SortFunc(rs, func(a, b *role) int {
		c := cmp.Compare(strings.ToLower(a.name), strings.ToLower(b.name))
		if dir == "descending" {
			return -c
		}
		return c
	})
	out := make([]any, len(rs))
	for i, r := range rs {
		out[i] = roleObj{r}
	}
	return out, nil
}

func (s *Server) resolveRoleByID(args map[string]any) (any, error) {
	id := fmt.Sprint(args["id"])
	r := s.roles[id]
	if r == nil {
		return nil, errorf(codeNotFound, "role %s not found", id)
	}
	return roleObj{r}, nil
}

func (s *Server) resolveRoleByName(args map[string]any) (any, error) {
	name, _ := args["name"].(string)
	r := s.roleByNameLocked(name)
	if r == nil {
		return nil, errorf(codeNotFound, "role %q not found", name)
	}
	return roleObj{r}, nil
}

func (s *Server) resolveInviteUser(args map[string]any) (any, error) {
	in, _ := args["input"].(map[string]any)
	email, _ := in["email"].(string)
	given, _ := in["givenName"].(string)
	family, _ := in["familyName"].(string)
	ref, _ := in["role"].(map[string]any)
	r, err := s.resolveRoleRef(ref)
	if err != nil {
		return nil, err
	}
	u, err := s.newUserLocked(email, given, family, r)
	if err != nil {
		return nil, err
	}
	return mapObject{"InviteUserOutput", map[string]any{"user": userObj{u}}}, nil
}

// resolveUpdateUser applies the fields present in the input, all or none: every given field is
// checked before any is changed. A field sent as null is treated as absent.
func (s *Server) resolveUpdateUser(args map[string]any) (any, error) {
	in, _ := args["input"].(map[string]any)
	id := fmt.Sprint(in["id"])
	u := s.users[id]
	if u == nil {
		return nil, errorf(codeNotFound, "user %s not found", id)
	}
	next := *u
	if v, ok := in["email"].(string); ok {
		if !validEmail(v) {
			return nil, errorf(codeBadUserInput, "invalid email address %q", v)
		}
		if other := s.userByEmailLocked(v); other != nil && other.id != u.id {
			return nil, s.duplicateLocked(v)
		}
		next.email = v
	}
	if v, ok := in["givenName"].(string); ok {
		if strings.TrimSpace(v) == "" {
			return nil, errorf(codeBadUserInput, "givenName must not be empty")
		}
		next.givenName = v
	}
	if v, ok := in["familyName"].(string); ok {
		if strings.TrimSpace(v) == "" {
			return nil, errorf(codeBadUserInput, "familyName must not be empty")
		}
		next.familyName = v
	}
	if ref, ok := in["role"].(map[string]any); ok {
		r, err := s.resolveRoleRef(ref)
		if err != nil {
			return nil, err
		}
		next.roleID = r.id
	}
	delete(s.emailIndex, strings.ToLower(u.email))
	*u = next
	s.emailIndex[strings.ToLower(u.email)] = u.id
	return mapObject{"UpdateUserOutput", map[string]any{"user": userObj{u}}}, nil
}

func (s *Server) resolveDeleteUser(args map[string]any) (any, error) {
	in, _ := args["input"].(map[string]any)
	id := fmt.Sprint(in["id"])
	u := s.users[id]
	if u == nil {
		return nil, errorf(codeNotFound, "user %s not found", id)
	}
	s.removeUserLocked(u)
	return mapObject{"DeleteUserOutput", map[string]any{"id": id}}, nil
}

func (s *Server) removeUserLocked(u *user) {
	delete(s.users, u.id)
	s.byAge = nil
	delete(s.emailIndex, strings.ToLower(u.email))
}

func (s *Server) resolveCreateRole(args map[string]any) (any, error) {
	in, _ := args["input"].(map[string]any)
	name, _ := in["name"].(string)
	perms := anyStrings(in["permissions"])
	r, err := s.newRoleLocked(name, perms, true)
	if err != nil {
		return nil, err
	}
	if v, ok := in["logTypeAccessKind"].(string); ok {
		r.logTypeAccessKind = v
	}
	if v, ok := in["logTypeAccess"].([]any); ok {
		r.logTypeAccess = anyStrings(v)
	}
	return mapObject{"CreateRoleOutput", map[string]any{"role": roleObj{r}}}, nil
}

func (s *Server) resolveUpdateRole(args map[string]any) (any, error) {
	in, _ := args["input"].(map[string]any)
	id := fmt.Sprint(in["id"])
	r := s.roles[id]
	if r == nil {
		return nil, errorf(codeNotFound, "role %s not found", id)
	}
	next := *r
	if v, ok := in["name"].(string); ok {
		if strings.TrimSpace(v) == "" {
			return nil, errorf(codeBadUserInput, "role name must not be empty")
		}
		if other := s.roleByNameLocked(v); other != nil && other.id != r.id {
			return nil, errorf(codeAlreadyExists, "a role named %q already exists", v)
		}
		next.name = v
	}
	if v, ok := in["permissions"].([]any); ok {
		next.permissions = anyStrings(v)
	}
	if v, ok := in["logTypeAccessKind"].(string); ok {
		next.logTypeAccessKind = v
	}
	if v, ok := in["logTypeAccess"].([]any); ok {
		next.logTypeAccess = anyStrings(v)
	}
	next.updatedAt, next.byToken = s.now().UTC(), true
	*r = next
	return mapObject{"UpdateRoleOutput", map[string]any{"role": roleObj{r}}}, nil
}

func (s *Server) resolveDeleteRole(args map[string]any) (any, error) {
	in, _ := args["input"].(map[string]any)
	id := fmt.Sprint(in["id"])
	if s.roles[id] == nil {
		return nil, errorf(codeNotFound, "role %s not found", id)
	}
	for _, u := range s.users {
		if u.roleID == id {
			return nil, errorf(codeBadUserInput, "role %s is assigned to users", id)
		}
	}
	delete(s.roles, id)
	return mapObject{"DeleteRoleOutput", map[string]any{"id": id}}, nil
}

// anyStrings converts a coerced GraphQL list of strings.
func anyStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
