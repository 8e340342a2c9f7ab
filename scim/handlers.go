package scim

import (
	"context"
	"net/http"
	"strings"
	"time"

	elimity "github.com/elimity-com/scim"
	"github.com/elimity-com/scim/optional"
	"github.com/scim2/filter-parser/v2"

	"github.com/panther-scim/panther-scim/scim/resource"
)

// resourceType is what differs between /Users and /Groups: R is the record, F what
// the IdP sets on it. resourceHandler serves either with the same code.
type resourceType[R, F any] struct {
	schema resource.Schema
	// fields turns a validated document into what the IdP sets; whole is true for
	// POST and PUT, whose absent attributes take their defaults.
	fields func(doc map[string]any, whole bool) (F, error)
	// doc is the document of a record that PATCH operates on.
	doc func(R) map[string]any
	// present builds the library's view of a record, with the references it shows.
	present func(h *handler, r *http.Request, rec R) (elimity.Resource, error)
	// version is a record's version (its ETag).
	version func(R) int64
	// patchNoContent answers a PATCH 204 No Content, without the resource, unless the
	// request asks for attributes or excludedAttributes (RFC 7644 §3.5.2 allows either;
	// Entra asks for 204 on /Groups, whose members may be many).
	patchNoContent bool
	// source is how lists read the records.
	source source[R]

	// The Service's methods for the type, as method expressions.
	create func(Service, context.Context, F) (R, error)
	get    func(Service, context.Context, string) (R, error)
	update func(svc Service, ctx context.Context, id string, expect int64, mutate func(R) (F, error)) (R, error)
	remove func(svc Service, ctx context.Context, id string, expect int64) error
}

// resourceHandler serves one resource type for the library.
type resourceHandler[R, F any] struct {
	h *handler
	t *resourceType[R, F]
}

var (
	_ elimity.ResourceHandler  = resourceHandler[struct{}, struct{}]{}
	_ elimity.ResourceSearcher = resourceHandler[struct{}, struct{}]{}
)

func (x resourceHandler[R, F]) Create(r *http.Request, attrs elimity.ResourceAttributes) (elimity.Resource, error) {
	f, err := x.whole(attrs)
	if err != nil {
		return elimity.Resource{}, fail(r, err)
	}
	rec, err := x.t.create(x.h.svc, r.Context(), f)
	if err != nil {
		return elimity.Resource{}, fail(r, err)
	}
	return x.t.present(x.h, r, rec)
}

func (x resourceHandler[R, F]) Get(r *http.Request, id string) (elimity.Resource, error) {
	rec, err := x.t.get(x.h.svc, r.Context(), id)
	if err != nil {
		return elimity.Resource{}, fail(r, err)
	}
	return x.t.present(x.h, r, rec)
}

func (x resourceHandler[R, F]) GetAll(r *http.Request, params elimity.ListRequestParams) (elimity.Page, error) {
	q := r.URL.Query()
	var expr filter.Expression
	if params.FilterValidator != nil {
		expr = params.FilterValidator.GetFilter()
	} else {
		expr = state(r).lookup
	}
	return x.list(r, expr, params.StartIndex, params.Count, q.Get("sortBy"), q.Get("sortOrder"))
}

func (x resourceHandler[R, F]) Search(r *http.Request, params elimity.SearchParams) (elimity.Page, error) {
	st := state(r)
	st.attrs, st.excluded = params.Attributes, params.ExcludedAttributes
	var expr filter.Expression
	if params.FilterValidator != nil {
		expr = params.FilterValidator.GetFilter()
	} else {
		expr = st.lookup
	}
	return x.list(r, expr, params.StartIndex, params.Count, params.SortBy, params.SortOrder)
}

func (x resourceHandler[R, F]) Replace(r *http.Request, id string, attrs elimity.ResourceAttributes) (elimity.Resource, error) {
	f, err := x.whole(attrs)
	if err != nil {
		return elimity.Resource{}, fail(r, err)
	}
	rec, err := x.t.update(x.h.svc, r.Context(), id, ifMatch(r), func(R) (F, error) { return f, nil })
	if err != nil {
		return elimity.Resource{}, fail(r, err)
	}
	return x.t.present(x.h, r, rec)
}

func (x resourceHandler[R, F]) Patch(r *http.Request, id string, ops []elimity.PatchOperation) (elimity.Resource, error) {
	rec, err := x.t.update(x.h.svc, r.Context(), id, ifMatch(r), func(old R) (F, error) {
		next, err := x.t.schema.ApplyPatch(x.t.doc(old), patchOps(ops))
		if err != nil {
			var zero F
			return zero, err
		}
		return x.t.fields(next, false)
	})
	if err != nil {
		return elimity.Resource{}, fail(r, err)
	}
	if st := state(r); x.t.patchNoContent && len(st.attrs) == 0 && len(st.excluded) == 0 {
		// A resource without attributes is the library's 204; the ETag goes on it (finish).
		st.etag = etagOf(x.t.version(rec))
		return elimity.Resource{}, nil
	}
	return x.t.present(x.h, r, rec)
}

func (x resourceHandler[R, F]) Delete(r *http.Request, id string) error {
	if err := x.t.remove(x.h.svc, r.Context(), id, ifMatch(r)); err != nil {
		return fail(r, err)
	}
	return nil
}

// whole checks a POST or PUT document and turns it into what the IdP sets.
func (x resourceHandler[R, F]) whole(attrs elimity.ResourceAttributes) (F, error) {
	if err := x.t.schema.CheckValues(attrs); err != nil {
		var zero F
		return zero, err
	}
	return x.t.fields(attrs, true)
}

func (x resourceHandler[R, F]) list(r *http.Request, expr filter.Expression, start, count int, sortBy, sortOrder string) (elimity.Page, error) {
	recs, total, err := x.t.source.query(r, x.h.records, expr, start, count, sortBy, sortOrder)
	if err != nil {
		return elimity.Page{}, fail(r, err)
	}
	res := make([]elimity.Resource, 0, len(recs))
	for _, rec := range recs {
		rr, err := x.t.present(x.h, r, rec)
		if err != nil {
			return elimity.Page{}, err
		}
		res = append(res, rr)
	}
	return elimity.Page{TotalResults: total, Resources: res}, nil
}

// patchOps converts the operations elimity's server hands to a PATCH handler.
func patchOps(ops []elimity.PatchOperation) []resource.PatchOp {
	out := make([]resource.PatchOp, len(ops))
	for i, op := range ops {
		out[i] = resource.PatchOp{Op: op.Op, Path: op.Path, Value: op.Value}
	}
	return out
}

func resourceOf(id, externalID string, attrs elimity.ResourceAttributes, created, modified time.Time, version int64) elimity.Resource {
	res := elimity.Resource{
		ID: id, Attributes: attrs,
		Meta: elimity.Meta{Created: &created, LastModified: &modified, Version: etagOf(version)},
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

func metaDoc(resourceType string, created, modified time.Time, version int64) map[string]any {
	return map[string]any{
		"resourceType": resourceType,
		"created":      created.UTC().Format(time.RFC3339),
		"lastModified": modified.UTC().Format(time.RFC3339),
		"version":      etagOf(version),
	}
}
