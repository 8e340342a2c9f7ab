package scim

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/scim2/filter-parser/v2"

	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/scim/resource"
)

// groupHandler serves /Groups for the library.
type groupHandler struct{ h *handler }

var (
	_ scim.ResourceHandler  = (*groupHandler)(nil)
	_ scim.ResourceSearcher = (*groupHandler)(nil)
)

func (g *groupHandler) Create(r *http.Request, attrs scim.ResourceAttributes) (scim.Resource, error) {
	f, err := groupFields(attrs)
	if err != nil {
		return scim.Resource{}, fail(r, err)
	}
	rec, err := g.h.svc.CreateGroup(r.Context(), f)
	if err != nil {
		return scim.Resource{}, fail(r, err)
	}
	return g.resource(r, rec)
}

func (g *groupHandler) Get(r *http.Request, id string) (scim.Resource, error) {
	rec, err := g.h.svc.GetGroup(r.Context(), id)
	if err != nil {
		return scim.Resource{}, fail(r, err)
	}
	return g.resource(r, rec)
}

func (g *groupHandler) GetAll(r *http.Request, params scim.ListRequestParams) (scim.Page, error) {
	q := r.URL.Query()
	var expr filter.Expression
	if params.FilterValidator != nil {
		expr = params.FilterValidator.GetFilter()
	} else {
		expr = state(r).lookup
	}
	return g.list(r, expr, params.StartIndex, params.Count, q.Get("sortBy"), q.Get("sortOrder"))
}

func (g *groupHandler) Search(r *http.Request, params scim.SearchParams) (scim.Page, error) {
	st := state(r)
	st.attrs, st.excluded = params.Attributes, params.ExcludedAttributes
	var expr filter.Expression
	if params.FilterValidator != nil {
		expr = params.FilterValidator.GetFilter()
	}
	return g.list(r, expr, params.StartIndex, params.Count, params.SortBy, params.SortOrder)
}

func (g *groupHandler) Replace(r *http.Request, id string, attrs scim.ResourceAttributes) (scim.Resource, error) {
	f, err := groupFields(attrs)
	if err != nil {
		return scim.Resource{}, fail(r, err)
	}
	rec, err := g.h.svc.UpdateGroup(r.Context(), id, ifMatch(r), func(provision.Group) (provision.GroupFields, error) {
		return f, nil
	})
	if err != nil {
		return scim.Resource{}, fail(r, err)
	}
	return g.resource(r, rec)
}

func (g *groupHandler) Patch(r *http.Request, id string, ops []scim.PatchOperation) (scim.Resource, error) {
	rec, err := g.h.svc.UpdateGroup(r.Context(), id, ifMatch(r), func(old provision.Group) (provision.GroupFields, error) {
		next, err := resource.GroupSchema.ApplyPatch(groupDoc(old), patchOps(ops))
		if err != nil {
			return provision.GroupFields{}, err
		}
		return groupFields(next)
	})
	if err != nil {
		return scim.Resource{}, fail(r, err)
	}
	return g.resource(r, rec)
}

func (g *groupHandler) Delete(r *http.Request, id string) error {
	if err := g.h.svc.DeleteGroup(r.Context(), id, ifMatch(r)); err != nil {
		return fail(r, err)
	}
	return nil
}

// groupFields turns a validated SCIM group document into what the IdP sets.
func groupFields(doc map[string]any) (provision.GroupFields, error) {
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

func (g *groupHandler) resource(r *http.Request, rec provision.Group) (scim.Resource, error) {
	attrs := scim.ResourceAttributes{"displayName": rec.DisplayName}
	if len(rec.Members) > 0 && wantAttr(r, "members") {
		members, err := g.h.members(r, rec.Members)
		if err != nil {
			return scim.Resource{}, fail(r, err)
		}
		attrs["members"] = members
	}
	return resourceOf(rec.ID, rec.ExternalID, attrs, rec.Created, rec.LastModified, rec.Version), nil
}

func (h *handler) members(r *http.Request, ids []string) ([]any, error) {
	base := state(r).base
	out := make([]any, 0, len(ids))
	err := h.svc.Store().View(r.Context(), func(tx provision.ReadTx) error {
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

var groupSource = source[provision.Group]{
	rs:         resource.GroupSchema,
	count:      provision.ReadTx.GroupCount,
	scan:       provision.ReadTx.ScanGroups,
	candidates: groupCandidates,
	doc:        groupFilterDoc,
}

func (g *groupHandler) list(r *http.Request, expr filter.Expression, start, count int, sortBy, sortOrder string) (scim.Page, error) {
	recs, total, err := groupSource.query(r, g.h.svc.Store(), expr, start, count, sortBy, sortOrder)
	if err != nil {
		return scim.Page{}, fail(r, err)
	}
	res := make([]scim.Resource, 0, len(recs))
	for _, x := range recs {
		rr, err := g.resource(r, x)
		if err != nil {
			return scim.Page{}, err
		}
		res = append(res, rr)
	}
	return scim.Page{TotalResults: total, Resources: res}, nil
}

func groupFilterDoc(g provision.Group) map[string]any {
	doc := groupDoc(g)
	doc["meta"] = metaDoc("Group", g.Created, g.LastModified, g.Version)
	return doc
}

// groupCandidates uses the indexes for displayName eq, externalId eq, id eq and
// members[value eq "id"] / members.value eq "id".
func groupCandidates(tx provision.ReadTx, expr filter.Expression) ([]provision.Group, bool, error) {
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
		if e.Operator == filter.AND {
			if c, ok, err := groupCandidates(tx, e.Left); ok || err != nil {
				return c, ok, err
			}
			return groupCandidates(tx, e.Right)
		}
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
			gr, err := tx.GroupByDisplayName(v)
			if errors.Is(err, provision.ErrNotFound) {
				return nil, true, nil
			}
			if err != nil {
				return nil, true, err
			}
			return []provision.Group{gr}, true, nil
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

func metaDoc(resourceType string, created, modified time.Time, version int64) map[string]any {
	return map[string]any{
		"resourceType": resourceType,
		"created":      created.UTC().Format(time.RFC3339),
		"lastModified": modified.UTC().Format(time.RFC3339),
		"version":      etagOf(version),
	}
}
