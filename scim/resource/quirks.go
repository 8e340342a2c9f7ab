package resource

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode"
)

// NormalizePatchBody rewrites PATCH operations that elimity's validator rejects
// before our applier sees them, into the forms with the same meaning:
//   - a bare string for a single-valued complex attribute with a "value"
//     sub-attribute (Entra's {"op":"Add","path":"...:manager","value":"<id>"})
//     becomes {"value": "<id>"};
//   - null, or "" for a complex attribute, on add/replace clears the target
//     (RFC 7643 §2.5: null is unassigned), so it becomes a remove of that path;
//     in a pathless value, each such key becomes a remove of its own after the
//     operation;
//   - a value on a remove of a single-valued attribute is dropped (it names
//     nothing more than the path does);
//   - Okta's Group Push removes each member with its own operation,
//     {"op":"remove","path":"members[value eq \"<id>\"]"}; each becomes the
//     value-list remove Entra sends, {"op":"remove","path":"members",
//     "value":[{"value":"<id>"}]}, in the same place. The two mean the same
//     (members whose value equals the id, case folded as members.value is not
//     caseExact, go; none matching is no change), but the library's PEG parser
//     takes about 0.4 ms per value-filter path, 80% of such a PATCH. When the
//     request holds nothing else, they become one operation listing every id.
//
// Before those, the bare values of a path's value filter are quoted (QuoteBareValues:
// members[value eq 2819c223-...] as Microsoft's tools write it), and TolerateOp drops
// the operations and keys naming attributes the schema does not declare (reported in
// the Tolerated), merges core-URN-keyed attributes and qualifies bare extension
// attributes. When no operation is left, the body holds one that changes nothing (a
// pathless replace of no attribute), as the library refuses a PATCH without
// operations.
//
// Anything it does not recognise, including a body that is not JSON, is returned
// unchanged for the library to judge. The error is TolerateOp's.
func NormalizePatchBody(rs Schema, body []byte) ([]byte, Tolerated, error) {
	var t Tolerated
	var doc map[string]json.RawMessage
	if json.Unmarshal(body, &doc) != nil {
		return body, t, nil
	}
	opsKey := ""
	for k := range doc {
		if strings.EqualFold(k, "Operations") {
			opsKey = k
		}
	}
	var ops []map[string]any
	if opsKey == "" || decodeNumbers(doc[opsKey], &ops) != nil {
		return body, t, nil
	}
	changed := false
	var out []map[string]any
	var removed []any // the members of Okta-style removes, while every operation is one
	for i, op := range ops {
		changed = quoteOpPath(op) || changed
		if id, ok := memberFilterRemove(rs, op); ok {
			out, changed = append(out, map[string]any{"op": patchRemove, "path": "members", "value": []any{map[string]any{"value": id}}}), true
			if len(removed) == i {
				removed = append(removed, map[string]any{"value": id})
			}
			continue
		}
		keep, tolerated, err := rs.TolerateOp(op, &t)
		if err != nil {
			return body, t, err
		}
		changed = changed || tolerated
		if !keep {
			continue
		}
		next, ok := normalizePatchOp(rs, op)
		changed = changed || ok
		out = append(out, next...)
	}
	t.finish()
	if !changed {
		return body, t, nil
	}
	if len(out) == 0 && len(ops) > 0 {
		out = []map[string]any{{"op": patchReplace, "value": map[string]any{}}}
	}
	if len(removed) == len(ops) && len(ops) > 1 {
		// Nothing but member removes, none of which can fail: one operation does them all
		// (an error could not name a moved operation's index).
		out = []map[string]any{{"op": patchRemove, "path": "members", "value": removed}}
	}
	raw, err := json.Marshal(out)
	if err != nil {
		return body, t, nil
	}
	doc[opsKey] = raw
	res, err := json.Marshal(doc)
	if err != nil {
		return body, t, nil
	}
	return res, t, nil
}

func decodeNumbers(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(v)
}

// normalizePatchOp returns the operations that replace op, and whether they differ.
func normalizePatchOp(rs Schema, op map[string]any) ([]map[string]any, bool) {
	key := func(name string) string {
		for k := range op {
			if strings.EqualFold(k, name) {
				return k
			}
		}
		return name
	}
	opKey, pathKey, valueKey := key("op"), key("path"), key("value")
	kind, _ := op[opKey].(string)
	kind = strings.ToLower(strings.TrimSpace(kind))
	path, _ := op[pathKey].(string)
	value, hasValue := op[valueKey]
	if strings.TrimSpace(path) == "" {
		obj, ok := value.(map[string]any)
		if (kind != patchAdd && kind != patchReplace) || !ok {
			return []map[string]any{op}, false
		}
		removes, changed := normalizePathless(rs, kind, obj, "")
		out := []map[string]any{op}
		if len(obj) == 0 {
			out = nil // every key was a clear
		}
		for _, p := range removes {
			out = append(out, map[string]any{"op": patchRemove, "path": p})
		}
		return out, changed
	}
	switch kind {
	case patchAdd, patchReplace:
		if !hasValue {
			return []map[string]any{op}, false
		}
		if value == nil {
			if kind == patchAdd && multiValued(rs, path) {
				return []map[string]any{op}, false // adding nothing to a list is no clear
			}
			return []map[string]any{{"op": patchRemove, "path": path}}, true
		}
		nv, clear, ok := normalizeComplexString(rs, path, value)
		switch {
		case clear:
			return []map[string]any{{"op": patchRemove, "path": path}}, true
		case ok:
			op[valueKey] = nv
			return []map[string]any{op}, true
		}
	case patchRemove:
		if ref, err := rs.Resolve(path); hasValue && err == nil && !ref.IsContainer() && !ref.Target().MultiValued() {
			delete(op, valueKey)
			return []map[string]any{op}, true
		}
	}
	return []map[string]any{op}, false
}

// normalizePathless fixes the keys of a pathless value in place: bare strings for
// complex references are wrapped, and the keys that clear (null, or "" for a
// complex attribute) are taken out and returned as paths to remove. prefix is the
// extension URN when obj is an extension's object.
func normalizePathless(rs Schema, kind string, obj map[string]any, prefix string) ([]string, bool) {
	var removes []string
	changed := false
	for k, v := range obj {
		path := k
		if prefix != "" {
			path = prefix + ":" + k
		}
		switch strings.ToLower(k) {
		case "id", "meta", "schemas":
			continue // not attributes a PATCH sets; the library and the applier drop them
		}
		if v == nil && !(kind == patchAdd && multiValued(rs, path)) {
			removes = append(removes, path)
			delete(obj, k)
			continue
		}
		if ref, err := rs.Resolve(path); err == nil && ref.IsContainer() && ref.Extension {
			if sub, ok := v.(map[string]any); ok {
				r, c := normalizePathless(rs, kind, sub, ref.SchemaID)
				removes, changed = append(removes, r...), changed || c
				if len(sub) == 0 && len(r) > 0 {
					delete(obj, k)
				}
			}
			continue
		}
		nv, clear, ok := normalizeComplexString(rs, path, v)
		switch {
		case clear:
			removes = append(removes, path)
			delete(obj, k)
		case ok:
			obj[k] = nv
			changed = true
		}
	}
	return removes, changed || len(removes) > 0
}

// multiValued reports whether path names a multi-valued attribute (or an element
// of one, through a value filter).
func multiValued(rs Schema, path string) bool {
	if strings.ContainsAny(path, "[]") {
		return true
	}
	ref, err := rs.Resolve(path)
	return err == nil && !ref.IsContainer() && ref.Attr.MultiValued()
}

// normalizeComplexString handles a string given for a single-valued complex
// attribute: "" clears it, and any other string is its "value" sub-attribute when
// it has one.
func normalizeComplexString(rs Schema, path string, v any) (nv any, clear, ok bool) {
	s, isString := v.(string)
	if !isString || strings.ContainsAny(path, "[]") {
		return nil, false, false
	}
	ref, err := rs.Resolve(path)
	if err != nil || ref.IsContainer() {
		return nil, false, false
	}
	attr := ref.Target()
	if attr.AttributeType() != typeComplex || attr.MultiValued() {
		return nil, false, false
	}
	if s == "" {
		return nil, true, false
	}
	if _, has := attr.SubAttributes().ContainsAttribute("value"); has {
		return map[string]any{"value": s}, false, true
	}
	return nil, false, false
}

// memberFilterRemove returns the id of an operation that removes one member of a
// group by its path alone, {"op":"remove","path":"members[value eq \"<id>\"]"}.
func memberFilterRemove(rs Schema, op map[string]any) (string, bool) {
	var kind, path string
	for k, v := range op {
		switch strings.ToLower(k) {
		case "op":
			kind, _ = v.(string)
		case "path":
			path, _ = v.(string)
		case "value":
			return "", false
		}
	}
	if !strings.EqualFold(strings.TrimSpace(kind), patchRemove) {
		return "", false
	}
	return memberFilterPath(rs, path)
}

// memberFilterPath returns the id of a group's members[value eq "<id>"] path, as
// Okta writes it: attribute and operator in any case, single spaces, and an id
// without escapes. Other forms are left to the library's parser.
func memberFilterPath(rs Schema, path string) (string, bool) {
	if rs.Core.ID != GroupSchema.Core.ID {
		return "", false
	}
	const prefix, suffix = `members[value eq "`, `"]`
	if len(path) < len(prefix)+len(suffix) || !strings.EqualFold(path[:len(prefix)], prefix) || !strings.HasSuffix(path, suffix) {
		return "", false
	}
	id := path[len(prefix) : len(path)-len(suffix)]
	if id == "" || strings.ContainsAny(id, `"\`) || strings.IndexFunc(id, unicode.IsControl) >= 0 {
		return "", false
	}
	return id, true
}

// quoteOpPath quotes the bare values of the value filter of op's path, in place.
func quoteOpPath(op map[string]any) bool {
	_, pathKey, _ := opKeys(op)
	path, ok := op[pathKey].(string)
	if !ok || !strings.Contains(path, "[") {
		return false
	}
	q := QuoteBareValues(path)
	op[pathKey] = q
	return q != path
}
