package scim

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/scim2/filter-parser/v2"

	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/scim/resource"
)

// scanCheckEvery is how many records a filtered scan reads between looks at the
// request's context.
const scanCheckEvery = 256

// page returns [start-1, start-1+count) of items.
func page[T any](items []T, start, count int) []T {
	from := min(max(start-1, 0), len(items))
	to := min(from+count, len(items))
	return items[from:to]
}

// source is how a list reads one resource type from the store.
type source[T any] struct {
	rs         resource.Schema
	count      func(provision.ReadTx) (int, error)
	scan       func(tx provision.ReadTx, offset int, fn func(T) bool) error
	candidates func(provision.ReadTx, filter.Expression) ([]T, bool, error)
	doc        func(T) map[string]any // what filters and sorting see
}

// query answers a list or search: the records of the requested page and the total.
// An unfiltered, unsorted page skips to its offset without decoding what comes
// before; a filter uses an index when it can, else scans; a sort orders all matches.
func (src source[T]) query(r *http.Request, st provision.Store, expr filter.Expression, start, count int, sortBy, sortOrder string) ([]T, int, error) {
	var less func(a, b map[string]any) bool
	desc := false
	if sortBy != "" {
		var err error
		if less, err = src.rs.Less(sortBy); err != nil {
			return nil, 0, err
		}
		if desc, err = resource.ParseSortOrder(sortOrder); err != nil {
			return nil, 0, err
		}
	}
	var recs []T
	total := 0
	err := st.View(r.Context(), func(tx provision.ReadTx) error {
		if expr == nil && less == nil {
			n, err := src.count(tx)
			if err != nil {
				return err
			}
			total = n
			if count == 0 {
				return nil
			}
			return src.scan(tx, max(start-1, 0), func(x T) bool {
				recs = append(recs, x)
				return len(recs) < count
			})
		}
		cands, indexed, err := src.candidates(tx, expr)
		if err != nil {
			return err
		}
		// Check the filter against the schema once, then match each record.
		match := func(map[string]any) bool { return true }
		if expr != nil {
			if match, err = src.rs.CompileFilter(expr); err != nil {
				return err
			}
		}
		// A scan of a large store takes a while: stop when the client hangs up or the
		// request times out, checking every so many records.
		ctx, seen := r.Context(), 0
		visit := func(x T) bool {
			if seen++; seen%scanCheckEvery == 0 && ctx.Err() != nil {
				return false
			}
			if match(src.doc(x)) {
				recs = append(recs, x)
			}
			return true
		}
		if !indexed {
			if err := src.scan(tx, 0, visit); err != nil {
				return err
			}
			return ctx.Err()
		}
		for _, x := range cands {
			visit(x)
		}
		return nil
	})
	if err != nil {
		return nil, 0, asFilterErr(err)
	}
	if less != nil {
		docs := make([]map[string]any, len(recs))
		for i := range recs {
			docs[i] = src.doc(recs[i])
		}
		idx := make([]int, len(recs))
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int {
			x, y := docs[a], docs[b]
			if desc {
				x, y = y, x
			}
			switch {
			case less(x, y):
				return -1
			case less(y, x):
				return 1
			}
			return 0
		})
		sorted := make([]T, len(recs))
		for i, j := range idx {
			sorted[i] = recs[j]
		}
		recs = sorted
	}
	if expr != nil || less != nil {
		total = len(recs)
		recs = page(recs, start, count)
	}
	return recs, total, nil
}

var userSource = source[provision.User]{
	rs:         resource.UserSchema,
	count:      provision.ReadTx.UserCount,
	scan:       provision.ReadTx.ScanUsers,
	candidates: userCandidates,
	doc:        filterDoc,
}

func (u *userHandler) list(r *http.Request, expr filter.Expression, start, count int, sortBy, sortOrder string) (scim.Page, error) {
	recs, total, err := userSource.query(r, u.h.svc.Store(), expr, start, count, sortBy, sortOrder)
	if err != nil {
		return scim.Page{}, fail(r, err)
	}
	res := make([]scim.Resource, 0, len(recs))
	for _, x := range recs {
		rr, err := u.resource(r, x)
		if err != nil {
			return scim.Page{}, err
		}
		res = append(res, rr)
	}
	return scim.Page{TotalResults: total, Resources: res}, nil
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
func userCandidates(tx provision.ReadTx, expr filter.Expression) (cands []provision.User, indexed bool, err error) {
	switch e := expr.(type) {
	case *filter.LogicalExpression:
		if e.Operator == filter.AND {
			if c, ok, err := userCandidates(tx, e.Left); ok || err != nil {
				return c, ok, err
			}
			return userCandidates(tx, e.Right)
		}
	case *filter.AttributeExpression:
		if e.Operator != filter.EQ {
			return nil, false, nil
		}
		v, ok := e.CompareValue.(string)
		if !ok {
			return nil, false, nil
		}
		name := strings.ToLower(attrName(e.AttributePath))
		one := func(u provision.User, err error) ([]provision.User, bool, error) {
			if errors.Is(err, provision.ErrNotFound) {
				return nil, true, nil
			}
			if err != nil {
				return nil, true, err
			}
			return []provision.User{u}, true, nil
		}
		switch name {
		case "username":
			return one(tx.UserByUserName(v))
		case "id":
			return one(tx.User(v))
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

// attrName returns "name" or "name.sub" of a path, without its URN.
func attrName(p filter.AttributePath) string {
	n := p.AttributeName
	if p.SubAttribute != nil {
		n += "." + *p.SubAttribute
	}
	return n
}

func asFilterErr(err error) error {
	var se scimerrors.ScimError
	if errors.As(err, &se) {
		return se
	}
	return err
}
