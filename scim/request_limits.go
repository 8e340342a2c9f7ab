package scim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"unicode"

	scimerrors "github.com/elimity-com/scim/errors"

	"github.com/panther-scim/panther-scim/scim/resource"
)

// checkQueryLimits bounds, before anything parses them, the query parameters parsed
// as filters or paths: elimity parses "filter" itself, and the projection and sorting
// parse the others.
func checkQueryLimits(q url.Values) error {
	for _, f := range q["filter"] {
		if err := resource.CheckFilter("the filter", f); err != nil {
			return err
		}
	}
	for _, name := range []string{"attributes", "excludedAttributes", "sortBy"} {
		for _, v := range q[name] {
			if err := resource.CheckAttrParam(name, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkBodyLimits bounds what a request body holds that is parsed as a filter or a
// path, before elimity reads it: a .search request's filter, attributes and sortBy;
// a PATCH's number of operations, their paths, and the keys of pathless values (each
// an attribute path). A body that does not decode is left for the library to refuse.
func checkBodyLimits(method, path string, body []byte) error {
	switch {
	case method == http.MethodPost && strings.HasSuffix(path, "/.search"):
		return checkSearchLimits(body)
	case method == http.MethodPatch:
		return checkPatchLimits(body)
	}
	return nil
}

// maxSearchBody is the largest .search body accepted: its filter, attributes,
// excludedAttributes and sortBy are each bounded by resource.MaxFilterLength, the rest is a
// few numbers. A larger body is refused without decoding it.
const maxSearchBody = 4*resource.MaxFilterLength + 1024

// searchLimits is what of a .search body is parsed as filters and paths. encoding/json
// matches the keys in any case, as it does for the library.
type searchLimits struct {
	Filter             *string
	SortBy             *string
	Attributes         []string
	ExcludedAttributes []string
}

func checkSearchLimits(body []byte) error {
	if len(body) > maxSearchBody {
		return resource.BadRequest(scimerrors.ScimTypeInvalidFilter,
			"the search request is %d bytes long; the limit is %d bytes (a filter is at most %d)", len(body), maxSearchBody, resource.MaxFilterLength)
	}
	var req searchLimits
	if json.Unmarshal(body, &req) != nil {
		return nil
	}
	if req.Filter != nil {
		if err := resource.CheckFilter("the filter", *req.Filter); err != nil {
			return err
		}
	}
	if req.SortBy != nil {
		if err := resource.CheckAttrParam("sortBy", *req.SortBy); err != nil {
			return err
		}
	}
	if err := resource.CheckAttrParam("attributes", strings.Join(req.Attributes, ",")); err != nil {
		return err
	}
	return resource.CheckAttrParam("excludedAttributes", strings.Join(req.ExcludedAttributes, ","))
}

// patchLimits is what of a PATCH body is parsed as paths: each operation's path,
// and the keys of a pathless value. A value stays raw: only an object's keys matter.
type patchLimits struct {
	Operations []struct {
		Path  json.RawMessage
		Value json.RawMessage
	}
}

func checkPatchLimits(body []byte) error {
	var req patchLimits
	if json.Unmarshal(body, &req) != nil {
		return nil // the library refuses it
	}
	if err := resource.CheckPatchSize(len(req.Operations)); err != nil {
		return err
	}
	for _, op := range req.Operations {
		if len(op.Path) > 0 && op.Path[0] == '"' {
			if len(op.Path) > 6*resource.MaxFilterLength+2 {
				// Even if every character were a \u escape, too long: no need to decode it.
				return resource.BadRequest(scimerrors.ScimTypeInvalidFilter,
					"the PATCH path is more than %d bytes long; the limit is %d bytes", resource.MaxFilterLength, resource.MaxFilterLength)
			}
			var path string
			if json.Unmarshal(op.Path, &path) == nil {
				if err := resource.CheckFilter("the PATCH path", path); err != nil {
					return err
				}
			}
			if strings.TrimSpace(path) != "" {
				continue
			}
		}
		if err := checkValueKeys(op.Value, 2); err != nil {
			return err
		}
	}
	return nil
}

// checkValueKeys bounds the keys of a pathless PATCH value, an object whose keys are
// attribute paths, and of the extension objects in it (levels deep).
func checkValueKeys(raw json.RawMessage, levels int) error {
	if i := bytes.IndexFunc(raw, func(r rune) bool { return !unicode.IsSpace(r) }); i < 0 || raw[i] != '{' {
		return nil
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return nil
	}
	for key, sub := range obj {
		if err := resource.CheckFilter("a key of the PATCH value", key); err != nil {
			return err
		}
		if levels > 1 && strings.HasPrefix(strings.ToLower(key), "urn:") {
			if err := checkValueKeys(sub, levels-1); err != nil {
				return err
			}
		}
	}
	return nil
}
