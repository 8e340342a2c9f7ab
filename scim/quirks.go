package scim

import (
	"bytes"
	"encoding/json"
	"strings"
)

// normalizePatchBody rewrites PATCH operations that elimity's validator rejects
// before our applier sees them, into the forms with the same meaning:
//   - a bare string for a single-valued complex attribute with a "value"
//     sub-attribute (Entra's {"op":"Add","path":"...:manager","value":"<id>"})
//     becomes {"value": "<id>"};
//   - null, or "" for a complex attribute, on add/replace clears the target
//     (RFC 7643 §2.5: null is unassigned), so it becomes a remove of that path;
//   - a value on a remove of a single-valued attribute is dropped (it names
//     nothing more than the path does).
//
// Anything it does not recognise, including a body that is not JSON, is returned
// unchanged for the library to judge.
func normalizePatchBody(rs ResourceSchema, body []byte) []byte {
	var doc map[string]json.RawMessage
	if json.Unmarshal(body, &doc) != nil {
		return body
	}
	opsKey := ""
	for k := range doc {
		if strings.EqualFold(k, "Operations") {
			opsKey = k
		}
	}
	var ops []map[string]any
	if opsKey == "" || decodeNumbers(doc[opsKey], &ops) != nil {
		return body
	}
	changed := false
	for _, op := range ops {
		if normalizePatchOp(rs, op) {
			changed = true
		}
	}
	if !changed {
		return body
	}
	raw, err := json.Marshal(ops)
	if err != nil {
		return body
	}
	doc[opsKey] = raw
	out, err := json.Marshal(doc)
	if err != nil {
		return body
	}
	return out
}

func decodeNumbers(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(v)
}

// normalizePatchOp rewrites one operation in place and reports whether it did.
func normalizePatchOp(rs ResourceSchema, op map[string]any) bool {
	key := func(name string) string {
		for k := range op {
			if strings.EqualFold(k, name) {
				return k
			}
		}
		return ""
	}
	opKey, pathKey, valueKey := key("op"), key("path"), key("value")
	kind, _ := op[opKey].(string)
	path, _ := op[pathKey].(string)
	if opKey == "" || strings.TrimSpace(path) == "" || strings.ContainsAny(path, "[]") {
		return false
	}
	ref, err := rs.Resolve(path)
	if err != nil || ref.IsContainer() {
		return false
	}
	attr := ref.Target()
	complexSingle := attr.AttributeType() == typeComplex && !attr.MultiValued()
	value, hasValue := op[valueKey]
	switch strings.ToLower(strings.TrimSpace(kind)) {
	case patchAdd, patchReplace:
		if !hasValue {
			return false
		}
		s, isString := value.(string)
		switch {
		case value == nil || (complexSingle && isString && s == ""):
			op[opKey] = patchRemove
			delete(op, valueKey)
			return true
		case complexSingle && isString:
			if _, ok := attr.SubAttributes().ContainsAttribute("value"); ok {
				op[valueKey] = map[string]any{"value": s}
				return true
			}
		}
	case patchRemove:
		if hasValue && !attr.MultiValued() {
			delete(op, valueKey)
			return true
		}
	}
	return false
}
