package scim

import (
	"errors"
	"net/http"
	"slices"

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
	count      func(RecordsTx) (int, error)
	scan       func(tx RecordsTx, offset int, fn func(T) bool) error
	candidates func(RecordsTx, filter.Expression) ([]T, bool, error)
	doc        func(T) map[string]any // what filters and sorting see
}

// query answers a list or search: the records of the requested page and the total.
// An unfiltered, unsorted page skips to its offset without decoding what comes
// before; a filter uses an index when it can, else scans; a sort orders all matches.
func (src source[T]) query(r *http.Request, records Records, expr filter.Expression, start, count int, sortBy, sortOrder string) ([]T, int, error) {
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
	err := records.View(r.Context(), func(tx RecordsTx) error {
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

// unique is what one unique-index lookup gives a list: the record, or none when the
// lookup misses.
func unique[T any](x T, err error) ([]T, bool, error) {
	if errors.Is(err, provision.ErrNotFound) {
		return nil, true, nil
	}
	if err != nil {
		return nil, true, err
	}
	return []T{x}, true, nil
}

// eitherSide narrows "a and b" to the candidates of whichever side an index answers
// (the other side is checked on them with the whole filter); "or" needs a scan.
func eitherSide[T any](tx RecordsTx, e *filter.LogicalExpression, candidates func(RecordsTx, filter.Expression) ([]T, bool, error)) ([]T, bool, error) {
	if e.Operator != filter.AND {
		return nil, false, nil
	}
	if c, ok, err := candidates(tx, e.Left); ok || err != nil {
		return c, ok, err
	}
	return candidates(tx, e.Right)
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
