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
)

// listQuery is a parsed list or search request.
type listQuery struct {
	expr      filter.Expression
	start     int // 1-based
	count     int
	sortBy    string
	sortOrder string
}

// page returns [start-1, start-1+count) of items.
func page[T any](items []T, start, count int) []T {
	from := min(max(start-1, 0), len(items))
	to := min(from+count, len(items))
	return items[from:to]
}

func (u *userHandler) list(r *http.Request, expr filter.Expression, start, count int, sortBy, sortOrder string) (scim.Page, error) {
	ctx := r.Context()
	var less func(a, b map[string]any) bool
	desc := false
	if sortBy != "" {
		var err error
		if less, err = UserSchema.Less(sortBy); err != nil {
			return scim.Page{}, fail(r, err)
		}
		if desc, err = ParseSortOrder(sortOrder); err != nil {
			return scim.Page{}, fail(r, err)
		}
	}
	var recs []provision.User
	total := 0
	err := u.h.svc.Store().View(ctx, func(tx provision.ReadTx) error {
		if expr == nil && less == nil {
			// The common unfiltered page: skip to it without decoding what comes before.
			n, err := tx.UserCount()
			if err != nil {
				return err
			}
			total = n
			if count == 0 {
				return nil
			}
			return tx.ScanUsers(max(start-1, 0), func(x provision.User) bool {
				recs = append(recs, x)
				return len(recs) < count
			})
		}
		cands, indexed, err := userCandidates(tx, expr)
		if err != nil {
			return err
		}
		// Check the filter against the schema once, then match each record.
		match := func(map[string]any) bool { return true }
		if expr != nil {
			if match, err = UserSchema.CompileFilter(expr); err != nil {
				return err
			}
		}
		visit := func(x provision.User) bool {
			if match(filterDoc(x)) {
				recs = append(recs, x)
			}
			return true
		}
		if indexed {
			for _, x := range cands {
				if !visit(x) {
					break
				}
			}
		} else if err := tx.ScanUsers(0, visit); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return scim.Page{}, fail(r, asFilterErr(err))
	}
	if less != nil {
		docs := make([]map[string]any, len(recs))
		for i := range recs {
			docs[i] = filterDoc(recs[i])
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
		sorted := make([]provision.User, len(recs))
		for i, j := range idx {
			sorted[i] = recs[j]
		}
		recs = sorted
	}
	if expr != nil || less != nil {
		total = len(recs)
		recs = page(recs, start, count)
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
