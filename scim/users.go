package scim

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/optional"
	"github.com/scim2/filter-parser/v2"

	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/scim/resource"
)

// userHandler serves /Users for the library.
type userHandler struct{ h *handler }

var (
	_ scim.ResourceHandler  = (*userHandler)(nil)
	_ scim.ResourceSearcher = (*userHandler)(nil)
)

// Attributes that are not kept in User.Attributes: served from fields of the record,
// computed, or never stored (password is writeOnly and panther-scim has no use for it).
var userReserved = map[string]bool{
	"id": true, "externalid": true, "meta": true, "schemas": true, "username": true,
	"active": true, "groups": true, "password": true,
}

func (u *userHandler) Create(r *http.Request, attrs scim.ResourceAttributes) (scim.Resource, error) {
	if err := resource.UserSchema.CheckValues(attrs); err != nil {
		return scim.Resource{}, fail(r, err)
	}
	f, err := userFields(attrs, true)
	if err != nil {
		return scim.Resource{}, fail(r, err)
	}
	rec, err := u.h.svc.CreateUser(r.Context(), f)
	if err != nil {
		return scim.Resource{}, fail(r, err)
	}
	return u.resource(r, rec)
}

func (u *userHandler) Get(r *http.Request, id string) (scim.Resource, error) {
	rec, err := u.h.svc.GetUser(r.Context(), id)
	if err != nil {
		return scim.Resource{}, fail(r, err)
	}
	return u.resource(r, rec)
}

func (u *userHandler) GetAll(r *http.Request, params scim.ListRequestParams) (scim.Page, error) {
	q := r.URL.Query()
	var expr filter.Expression
	if params.FilterValidator != nil {
		expr = params.FilterValidator.GetFilter()
	} else {
		expr = state(r).lookup
	}
	return u.list(r, expr, params.StartIndex, params.Count, q.Get("sortBy"), q.Get("sortOrder"))
}

func (u *userHandler) Search(r *http.Request, params scim.SearchParams) (scim.Page, error) {
	st := state(r)
	st.attrs, st.excluded = params.Attributes, params.ExcludedAttributes
	var expr filter.Expression
	if params.FilterValidator != nil {
		expr = params.FilterValidator.GetFilter()
	}
	return u.list(r, expr, params.StartIndex, params.Count, params.SortBy, params.SortOrder)
}

func (u *userHandler) Replace(r *http.Request, id string, attrs scim.ResourceAttributes) (scim.Resource, error) {
	if err := resource.UserSchema.CheckValues(attrs); err != nil {
		return scim.Resource{}, fail(r, err)
	}
	f, err := userFields(attrs, true)
	if err != nil {
		return scim.Resource{}, fail(r, err)
	}
	rec, err := u.h.svc.UpdateUser(r.Context(), id, ifMatch(r), func(old provision.User) (provision.UserFields, error) {
		return f, nil
	})
	if err != nil {
		return scim.Resource{}, fail(r, err)
	}
	return u.resource(r, rec)
}

func (u *userHandler) Patch(r *http.Request, id string, ops []scim.PatchOperation) (scim.Resource, error) {
	rec, err := u.h.svc.UpdateUser(r.Context(), id, ifMatch(r), func(old provision.User) (provision.UserFields, error) {
		cur := userDoc(old)
		next, err := resource.UserSchema.ApplyPatch(cur, patchOps(ops))
		if err != nil {
			return provision.UserFields{}, err
		}
		return userFields(next, false)
	})
	if err != nil {
		return scim.Resource{}, fail(r, err)
	}
	return u.resource(r, rec)
}

func (u *userHandler) Delete(r *http.Request, id string) error {
	if err := u.h.svc.DeleteUser(r.Context(), id, ifMatch(r)); err != nil {
		return fail(r, err)
	}
	return nil
}

// userFields turns a validated SCIM document into what the IdP sets. active defaults
// to true when absent on create or replace (RFC 7643 leaves it to the provider; both
// Okta and Entra send it when it matters).
func userFields(doc map[string]any, defaultActive bool) (provision.UserFields, error) {
	f := provision.UserFields{Attributes: map[string]any{}, Active: defaultActive}
	for k, v := range doc {
		switch strings.ToLower(k) {
		case "username":
			f.UserName, _ = v.(string)
		case "externalid":
			f.ExternalID, _ = v.(string)
		case "active":
			switch b := v.(type) {
			case bool:
				f.Active = b
			case string:
				f.Active = strings.EqualFold(b, "true")
			case nil:
			}
		default:
			if !userReserved[strings.ToLower(k)] && !empty(v) {
				f.Attributes[k] = v
			}
		}
	}
	f.UserName = strings.TrimSpace(f.UserName)
	if f.UserName == "" {
		return f, resource.BadRequest(scimerrors.ScimTypeInvalidValue, "userName is required and must be a non-empty string")
	}
	return f, nil
}

// empty reports a value that clears an attribute (RFC 7644 §3.5.2: null or "" unassigns).
func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		for _, sub := range x {
			if !empty(sub) {
				return false
			}
		}
		return true
	}
	return false
}

// userDoc is the SCIM document of a record without meta, groups and schemas: what
// PATCH operates on.
func userDoc(u provision.User) map[string]any {
	doc := make(map[string]any, len(u.Attributes)+4)
	for k, v := range u.Attributes {
		doc[k] = v
	}
	doc["id"] = u.ID
	doc["userName"] = u.UserName
	doc["active"] = u.Active
	if u.ExternalID != "" {
		doc["externalId"] = u.ExternalID
	}
	return doc
}

// resource builds the library's view of a user, with its groups.
func (u *userHandler) resource(r *http.Request, rec provision.User) (scim.Resource, error) {
	attrs := make(scim.ResourceAttributes, len(rec.Attributes)+3)
	for k, v := range rec.Attributes {
		attrs[k] = v
	}
	attrs["userName"] = rec.UserName
	attrs["active"] = rec.Active
	if wantAttr(r, "groups") {
		groups, err := u.h.userGroups(r, rec.ID)
		if err != nil {
			return scim.Resource{}, fail(r, err)
		}
		if len(groups) > 0 {
			attrs["groups"] = groups
		}
	}
	return resourceOf(rec.ID, rec.ExternalID, attrs, rec.Created, rec.LastModified, rec.Version), nil
}

func resourceOf(id, externalID string, attrs scim.ResourceAttributes, created, modified time.Time, version int64) scim.Resource {
	res := scim.Resource{
		ID: id, Attributes: attrs,
		Meta: scim.Meta{Created: &created, LastModified: &modified, Version: etagOf(version)},
	}
	if externalID != "" {
		res.ExternalID = optional.NewString(externalID)
	}
	return res
}

// wantAttr reports whether the response may include a top-level attribute, so that
// expensive ones (groups, members) are only computed when they will be served.
func wantAttr(r *http.Request, name string) bool {
	st := state(r)
	for _, a := range st.excluded {
		if strings.EqualFold(strings.SplitN(a, ".", 2)[0], name) {
			return false
		}
	}
	if len(st.attrs) == 0 {
		return true
	}
	for _, a := range st.attrs {
		if strings.EqualFold(strings.SplitN(a, ".", 2)[0], name) {
			return true
		}
	}
	return false
}

func (h *handler) userGroups(r *http.Request, userID string) ([]any, error) {
	var out []any
	base := state(r).base
	err := h.svc.Store().View(r.Context(), func(tx provision.ReadTx) error {
		ids, err := tx.GroupIDsOfUser(userID)
		if err != nil {
			return err
		}
		for _, gid := range ids {
			g, err := tx.GroupHeader(gid) // without its members, which may be many
			if errors.Is(err, provision.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			out = append(out, map[string]any{
				"value": g.ID, "display": g.DisplayName, "$ref": base + "/Groups/" + g.ID, "type": "direct",
			})
		}
		return nil
	})
	return out, err
}

func patchOps(ops []scim.PatchOperation) []resource.PatchOp {
	out := make([]resource.PatchOp, len(ops))
	for i, op := range ops {
		out[i] = resource.PatchOp{Op: op.Op, Path: op.Path, Value: op.Value}
	}
	return out
}
