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

// groups is /Groups.
var groups = &resourceType[provision.Group, provision.GroupFields]{
	schema:  resource.GroupSchema,
	fields:  groupFields,
	doc:     groupDoc,
	present: groupResource,
	version: func(g provision.Group) int64 { return g.Version },
	// Entra ID's documentation asks for 204; Okta accepts 200 and 204 alike.
	patchNoContent: true,
	source: source[provision.Group]{
		rs:         resource.GroupSchema,
		count:      RecordsTx.GroupCount,
		scan:       RecordsTx.ScanGroups,
		candidates: groupCandidates,
		doc:        groupFilterDoc,
	},
	create: Service.CreateGroup,
	get:    Service.GetGroup,
	update: Service.UpdateGroup,
	remove: Service.DeleteGroup,
}

// groupFields turns a validated SCIM group document into what the IdP sets (a group
// has no defaults, so whole makes no difference).
func groupFields(doc map[string]any, whole bool) (provision.GroupFields, error) {
	var f provision.GroupFields
	for k, v := range doc {
		switch strings.ToLower(k) {
		case "displayname":
			f.DisplayName, _ = v.(string)
		case "externalid":
			f.ExternalID, _ = v.(string)
		case "members":
			list, _ := v.([]any)
			for _, item := range list {
				m, _ := item.(map[string]any)
				id, _ := m["value"].(string)
				if id == "" {
					return f, resource.BadRequest(scimerrors.ScimTypeInvalidValue, "every member needs a \"value\": the id of a user")
				}
				f.Members = append(f.Members, id)
			}
		}
	}
	f.DisplayName = strings.TrimSpace(f.DisplayName)
	if f.DisplayName == "" {
		return f, resource.BadRequest(scimerrors.ScimTypeInvalidValue, "displayName is required and must be a non-empty string")
	}
	return f, nil
}

// groupDoc is the SCIM document PATCH operates on; members carry only their value.
func groupDoc(g provision.Group) map[string]any {
	doc := map[string]any{"id": g.ID, "displayName": g.DisplayName}
	if g.ExternalID != "" {
		doc["externalId"] = g.ExternalID
	}
	if len(g.Members) > 0 {
		members := make([]any, len(g.Members))
		for i, id := range g.Members {
			members[i] = map[string]any{"value": id}
		}
		doc["members"] = members
	}
	return doc
}

// groupResource builds the library's view of a group, with its members.
func groupResource(h *handler, r *http.Request, rec provision.Group) (elimity.Resource, error) {
	attrs := elimity.ResourceAttributes{"displayName": rec.DisplayName}
	if len(rec.Members) > 0 && wantAttr(r, "members") {
		members, err := h.members(r, rec.Members)
		if err != nil {
			return elimity.Resource{}, fail(r, err)
		}
		attrs["members"] = members
	}
	return resourceOf(rec.ID, rec.ExternalID, attrs, rec.Created, rec.LastModified, rec.Version), nil
}

func (h *handler) members(r *http.Request, ids []string) ([]any, error) {
	base := state(r).base
	out := make([]any, 0, len(ids))
	err := h.records.View(r.Context(), func(tx RecordsTx) error {
		for _, id := range ids {
			m := map[string]any{"value": id, "$ref": base + "/Users/" + id, "type": "User"}
			if u, err := tx.UserState(id); err == nil {
				m["display"] = u.UserName
			} else if !errors.Is(err, provision.ErrNotFound) {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	return out, err
}

func groupFilterDoc(g provision.Group) map[string]any {
	doc := groupDoc(g)
	doc["meta"] = metaDoc("Group", g.Created, g.LastModified, g.Version)
	return doc
}

// groupCandidates uses the indexes for displayName eq, externalId eq, id eq and
// members[value eq "id"] / members.value eq "id".
func groupCandidates(tx RecordsTx, expr filter.Expression) ([]provision.Group, bool, error) {
	byIDs := func(ids []string) ([]provision.Group, bool, error) {
		var out []provision.Group
		for _, id := range ids {
			g, err := tx.Group(id)
			if errors.Is(err, provision.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, true, err
			}
			out = append(out, g)
		}
		return out, true, nil
	}
	switch e := expr.(type) {
	case *filter.LogicalExpression:
		return eitherSide(tx, e, groupCandidates)
	case *filter.ValuePath:
		if strings.EqualFold(e.AttributePath.AttributeName, "members") {
			if ae, ok := e.ValueFilter.(*filter.AttributeExpression); ok && ae.Operator == filter.EQ &&
				strings.EqualFold(ae.AttributePath.AttributeName, "value") {
				if v, ok := ae.CompareValue.(string); ok {
					ids, err := tx.GroupIDsOfUser(v)
					if err != nil {
						return nil, true, err
					}
					return byIDs(ids)
				}
			}
		}
	case *filter.AttributeExpression:
		v, ok := e.CompareValue.(string)
		if e.Operator != filter.EQ || !ok {
			return nil, false, nil
		}
		switch strings.ToLower(attrName(e.AttributePath)) {
		case "displayname":
			return unique(tx.GroupByDisplayName(v))
		case "externalid":
			gs, err := tx.GroupsByExternalID(v)
			return gs, true, err
		case "id":
			return byIDs([]string{v})
		case "members.value", "members":
			ids, err := tx.GroupIDsOfUser(v)
			if err != nil {
				return nil, true, err
			}
			return byIDs(ids)
		}
	}
	return nil, false, nil
}
