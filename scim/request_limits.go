package scim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// checkQueryLimits bounds, before anything parses them, the query parameters parsed
// as filters or paths: elimity parses "filter" itself, and the projection and sorting
// parse the others.
func checkQueryLimits(q url.Values) error {
	for _, f := range q["filter"] {
		if err := CheckFilter("the filter", f); err != nil {
			return err
		}
	}
	for _, name := range []string{"attributes", "excludedAttributes", "sortBy"} {
		for _, v := range q[name] {
			if err := CheckAttrParam(name, v); err != nil {
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

func checkSearchLimits(body []byte) error {
	var req map[string]json.RawMessage
	if json.Unmarshal(body, &req) != nil {
		return nil
	}
	// encoding/json, which the library decodes the request with, matches keys in any
	// case, and the last duplicate wins: check every key that it could take.
	for k, raw := range req {
		var err error
		switch strings.ToLower(k) {
		case "filter":
			var s string
			if json.Unmarshal(raw, &s) == nil {
				err = CheckFilter("the filter", s)
			}
		case "sortby":
			var s string
			if json.Unmarshal(raw, &s) == nil {
				err = CheckAttrParam("sortBy", s)
			}
		case "attributes", "excludedattributes":
			var names []string
			if json.Unmarshal(raw, &names) == nil {
				err = CheckAttrParam(k, strings.Join(names, ","))
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func checkPatchLimits(body []byte) error {
	var req map[string]json.RawMessage
	if json.Unmarshal(body, &req) != nil {
		return nil
	}
	for k, raw := range req {
		if !strings.EqualFold(k, "Operations") {
			continue
		}
		var ops []map[string]json.RawMessage
		if json.Unmarshal(raw, &ops) != nil {
			continue
		}
		if err := CheckPatchSize(len(ops)); err != nil {
			return err
		}
		for _, op := range ops {
			if err := checkPatchOpLimits(op); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkPatchOpLimits bounds one operation's path, or the keys of its pathless value
// and of the extension objects in it, which the applier parses as paths.
func checkPatchOpLimits(op map[string]json.RawMessage) error {
	for k, raw := range op {
		switch strings.ToLower(k) {
		case "path":
			var s string
			if json.Unmarshal(raw, &s) == nil {
				if err := CheckFilter("the PATCH path", s); err != nil {
					return err
				}
			}
		case "value":
			var obj map[string]json.RawMessage
			if json.Unmarshal(raw, &obj) != nil {
				continue
			}
			for key, sub := range obj {
				if err := CheckFilter("a key of the PATCH value", key); err != nil {
					return err
				}
				var ext map[string]json.RawMessage
				if !strings.HasPrefix(strings.ToLower(key), "urn:") || json.Unmarshal(sub, &ext) != nil {
					continue
				}
				for extKey := range ext {
					if err := CheckFilter("a key of the PATCH value", extKey); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}
