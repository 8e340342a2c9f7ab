package scim

import (
	"errors"
	"net/http"
	"strings"

	elimity "github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/scim2/filter-parser/v2"

	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/scim/resource"
)

// users is /Users.
var users = &resourceType[provision.User, provision.UserFields]{
	schema:  resource.UserSchema,
	fields:  userFields,
	doc:     userDoc,
	present: userResource,
	version: func(u provision.User) int64 { return u.Version },
	source: source[provision.User]{
		rs:         resource.UserSchema,
		count:      RecordsTx.UserCount,
		scan:       RecordsTx.ScanUsers,
		candidates: userCandidates,
		doc:        filterDoc,
	},
	create: Service.CreateUser,
	get:    Service.GetUser,
	update: Service.UpdateUser,
	remove: Service.DeleteUser,
}

// Attributes that are not kept in User.Attributes: served from fields of the record,
// computed, or never stored (password is writeOnly and panther-scim has no use for it).
var userReserved = map[string]bool{
	"id": true, "externalid": true, "meta": true, "schemas": true, "username": true,
	"active": true, "groups": true, "password": true,
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

// userResource builds the library's view of a user, with its groups.
func userResource(h *handler, r *http.Request, rec provision.User) (elimity.Resource, error) {
	attrs := make(elimity.ResourceAttributes, len(rec.Attributes)+3)
	for k, v := range rec.Attributes {
		attrs[k] = v
	}
	attrs["userName"] = rec.UserName
	attrs["active"] = rec.Active
	if wantAttr(r, "groups") {
		groups, err := h.userGroups(r, rec.ID)
		if err != nil {
			return elimity.Resource{}, fail(r, err)
		}
		if len(groups) > 0 {
			attrs["groups"] = groups
		}
	}
	return resourceOf(rec.ID, rec.ExternalID, attrs, rec.Created, rec.LastModified, rec.Version), nil
}

func (h *handler) userGroups(r *http.Request, userID string) ([]any, error) {
	var out []any
	base := state(r).base
	err := h.records.View(r.Context(), func(tx RecordsTx) error {
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

// filterDoc is the document filters are evaluated on: the served user without groups.
func filterDoc(u provision.User) map[string]any {
	doc := userDoc(u)
	doc["meta"] = metaDoc("User", u.Created, u.LastModified, u.Version)
	return doc
}

// userCandidates narrows a filter to index lookups when it has an indexed equality
// at its top (alone, or as one side of an "and"): userName, externalId, id or emails.
// indexed is false when the whole store must be scanned.
func userCandidates(tx RecordsTx, expr filter.Expression) (cands []provision.User, indexed bool, err error) {
	switch e := expr.(type) {
	case *filter.LogicalExpression:
		return eitherSide(tx, e, userCandidates)
	case *filter.AttributeExpression:
		if e.Operator != filter.EQ {
			return nil, false, nil
		}
		v, ok := e.CompareValue.(string)
		if !ok {
			return nil, false, nil
		}
		name := strings.ToLower(attrName(e.AttributePath))
		switch name {
		case "username":
			return unique(tx.UserByUserName(v))
		case "id":
			return unique(tx.User(v))
		case "externalid":
			us, err := tx.UsersByExternalID(v)
			return us, true, err
		case "emails", "emails.value":
			// The index holds each user's Panther email; a hit is certain, a miss may
			// still be a secondary address, so it falls back to a scan.
			u, err := tx.UserByEmail(v)
			if err == nil {
				return []provision.User{u}, true, nil
			}
			if !errors.Is(err, provision.ErrNotFound) {
				return nil, true, err
			}
		}
	}
	return nil, false, nil
}
