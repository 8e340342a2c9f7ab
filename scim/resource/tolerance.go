package resource

import (
	"sort"
	"strings"

	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/schema"
)

// This file holds what makes a POST, PUT or PATCH body from a real identity provider acceptable to the schema
// validation that follows (elimity's, then the PATCH applier's) without changing its meaning:
//   - core attributes keyed by the core schema URN (RFC 7644 §3.10 allows fully qualified names), as a container
//     {"urn:...:core:2.0:User": {"userName": ...}} or one key at a time ("urn:...:core:2.0:User:userName"),
//     merged with the unqualified ones; the same attribute given both ways with different values is refused;
//   - extension attributes keyed by their qualified name ("urn:...:enterprise:2.0:User:employeeNumber") or by
//     their bare name when one extension alone declares it, moved under their extension's URN; the URN key in
//     any case;
//   - attributes and sub-attributes the schema does not declare (a misspelling, an extension this server does
//     not serve) taken out and named, so that the caller can refuse them (strict) or ignore and report them.

// Tolerated is what normalising a body found: the attributes it took out because the schema does not declare
// them, by the name the client used ("adreses", "name.middle_name",
// "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User:CustomAttribute"), sorted, each once.
type Tolerated struct {
	Unknown []string
}

func (t *Tolerated) unknown(name string) {
	t.Unknown = append(t.Unknown, name)
}

func (t *Tolerated) finish() {
	sort.SliceStable(t.Unknown, func(i, j int) bool { return strings.ToLower(t.Unknown[i]) < strings.ToLower(t.Unknown[j]) })
	t.Unknown = compactFold(t.Unknown)
}

// compactFold drops names equal, in any case, to the one before them.
func compactFold(names []string) []string {
	out := names[:0]
	for _, n := range names {
		if len(out) > 0 && strings.EqualFold(out[len(out)-1], n) {
			continue
		}
		out = append(out, n)
	}
	return out
}

// NormalizeDocument prepares a POST or PUT body, decoded as a JSON object, for validation: it merges core
// attributes keyed by the core schema URN into the top level, moves qualified or bare extension attributes under
// their extension's URN (spelled as the schema spells it), and takes out the attributes and sub-attributes the
// schema does not declare, returning their names. doc is changed in place. Two values for one attribute (given
// both qualified and not, in any case, and different) are a 400 invalidSyntax scimerrors.ScimError naming it.
func (rs Schema) NormalizeDocument(doc map[string]any) (Tolerated, error) {
	var t Tolerated
	if err := rs.mergeQualified(doc); err != nil {
		return t, err
	}
	for _, k := range sortedKeys(doc) {
		v := doc[k]
		switch strings.ToLower(k) {
		case "schemas", "id", "meta":
			continue
		}
		if ext, ok := rs.extension(k); ok {
			obj, isObj := jsonObject(v)
			if !isObj {
				continue // not an object: the validator refuses it
			}
			for _, ek := range sortedKeys(obj) {
				attr, ok := ext.Attributes.ContainsAttribute(ek)
				if !ok {
					t.unknown(ext.ID + ":" + ek)
					delete(obj, ek)
					continue
				}
				unknownSubs(attr, ext.ID+":"+attr.Name(), obj[ek], &t)
			}
			continue
		}
		ref, ok := rs.lookupCore(k)
		if !ok {
			t.unknown(unknownTopLevelName(k, v, &t))
			delete(doc, k)
			continue
		}
		unknownSubs(ref.Attr, ref.Attr.Name(), v, &t)
	}
	t.finish()
	return t, nil
}

// unknownTopLevelName names an unknown top-level key for the report. A key under a schema URN this server does
// not serve, whose value is an object, is taken as that extension's container: each of its keys is reported as
// "<urn>:<name>", the same name a PATCH path gives it, and "" is returned for the key itself when it has any.
func unknownTopLevelName(k string, v any, t *Tolerated) string {
	if !strings.HasPrefix(strings.ToLower(k), "urn:") {
		return k
	}
	obj, ok := jsonObject(v)
	if !ok || len(obj) == 0 {
		return k
	}
	keys := sortedKeys(obj)
	for _, sub := range keys[:len(keys)-1] {
		t.unknown(k + ":" + sub)
	}
	return k + ":" + keys[len(keys)-1]
}

// mergeQualified moves the URN-keyed attributes of doc where the validator looks for them (see NormalizeDocument).
func (rs Schema) mergeQualified(doc map[string]any) error {
	// The core first: its container may hold qualified extension keys too.
	for _, k := range sortedKeys(doc) {
		v := doc[k]
		switch {
		case strings.EqualFold(k, rs.Core.ID):
			obj, ok := jsonObject(v)
			if !ok {
				return BadRequest(scimerrors.ScimTypeInvalidSyntax,
					"the value of %q must be an object of %s attributes, not %s", k, rs.Core.Name.Value(), describeJSON(v))
			}
			delete(doc, k)
			for _, ck := range sortedKeys(obj) {
				if err := mergeKey(doc, ck, obj[ck], k+"."+ck); err != nil {
					return err
				}
			}
		case hasPrefixFold(k, rs.Core.ID+":"):
			delete(doc, k)
			if err := mergeKey(doc, k[len(rs.Core.ID)+1:], v, k); err != nil {
				return err
			}
		}
	}
	for _, k := range sortedKeys(doc) {
		v, ok := doc[k]
		if !ok {
			continue
		}
		if ext, ok := rs.extension(k); ok {
			if k == ext.ID {
				continue
			}
			obj, isObj := jsonObject(v)
			if !isObj {
				continue // not an object: the validator refuses it
			}
			delete(doc, k)
			for _, ek := range sortedKeys(obj) {
				if err := mergeExtensionKey(doc, ext, ek, obj[ek], k+"."+ek); err != nil {
					return err
				}
			}
			continue
		}
		if ext, name, ok := rs.qualifiedExtensionKey(k); ok {
			delete(doc, k)
			if err := mergeExtensionKey(doc, ext, name, v, k); err != nil {
				return err
			}
			continue
		}
		if _, core := rs.lookupCore(k); core || strings.HasPrefix(strings.ToLower(k), "urn:") {
			continue
		}
		if ref, ok := rs.lookupUnqualified(k); ok && ref.Extension {
			// Some clients leave the URN out of an extension attribute that only one extension declares.
			ext, _ := rs.extension(ref.SchemaID)
			delete(doc, k)
			if err := mergeExtensionKey(doc, ext, k, v, k); err != nil {
				return err
			}
		}
	}
	return nil
}

// qualifiedExtensionKey recognises "<extension URN>:<attribute>" for an extension of rs.
func (rs Schema) qualifiedExtensionKey(k string) (schema.Schema, string, bool) {
	for _, e := range rs.Extensions {
		if hasPrefixFold(k, e.ID+":") && len(k) > len(e.ID)+1 {
			return e, k[len(e.ID)+1:], true
		}
	}
	return schema.Schema{}, "", false
}

// mergeExtensionKey sets name to v in ext's container of doc, created when absent.
func mergeExtensionKey(doc map[string]any, ext schema.Schema, name string, v any, as string) error {
	holder, ok := jsonObject(doc[ext.ID])
	if !ok {
		if cur, exists := doc[ext.ID]; exists && cur != nil {
			return BadRequest(scimerrors.ScimTypeInvalidSyntax,
				"the value of %q must be an object of its attributes, not %s", ext.ID, describeJSON(cur))
		}
		holder = map[string]any{}
	}
	if err := mergeKey(holder, name, v, as); err != nil {
		return err
	}
	doc[ext.ID] = holder
	return nil
}

// mergeKey sets name to v in m unless m has it already, in any case: with the same value that is no conflict;
// with another it is a 400 invalidSyntax naming both spellings (as is how the client wrote the second one).
func mergeKey(m map[string]any, name string, v any, as string) error {
	prev, cur, ok := lookupKey(m, name)
	if !ok {
		m[name] = v
		return nil
	}
	if jsonEqual(cur, v) {
		return nil
	}
	return BadRequest(scimerrors.ScimTypeInvalidSyntax,
		"attribute %q is given twice with different values, as %q and as %q: send it once", name, prev, as)
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// unknownSubs takes the sub-attributes attr does not declare out of its value v (an object, or a list of them for
// a multi-valued attribute), reporting each as "<name>.<sub>".
func unknownSubs(attr schema.CoreAttribute, name string, v any, t *Tolerated) {
	if !attr.HasSubAttributes() {
		return
	}
	check := func(e any) {
		obj, ok := e.(map[string]any)
		if !ok {
			return
		}
		for _, k := range sortedKeys(obj) {
			if _, ok := attr.SubAttributes().ContainsAttribute(k); !ok {
				t.unknown(name + "." + k)
				delete(obj, k)
			}
		}
	}
	if l, ok := v.([]any); ok {
		for _, e := range l {
			check(e)
		}
		return
	}
	check(v)
}

// patchPathRef is a PATCH path as normalisePatchPath resolved it.
type patchPathRef struct {
	ref AttrRef
	// elemSub is the sub-attribute after a value filter (emails[type eq "work"].value), or nil.
	elemSub *schema.CoreAttribute
	// filtered is true when the path has a value filter.
	filtered bool
}

// pathStatus is what normalisePatchPath made of a path.
type pathStatus int

const (
	pathKnown    pathStatus = iota // an attribute of the schema
	pathUnknown                    // an attribute the schema does not declare: the name is the report's
	pathUnparsed                   // not recognised: left for the validator to judge
)

// resolvePatchPath resolves a PATCH path, or a key of a pathless value, without the filter parser (a PATCH may
// hold a thousand of them): an optional schema URN, an attribute, and either a sub-attribute or a value filter
// [..] with an optional sub-attribute after it. The filter itself is not read. It returns the path to use in its
// place (an extension attribute named without its URN gets it, as the validator wants it) and, for an unknown
// attribute, the name to report: the path without its value filter.
func (rs Schema) resolvePatchPath(path string) (ref patchPathRef, canonical, name string, st pathStatus) {
	head, tail := path, ""
	if i := strings.IndexByte(path, '['); i >= 0 {
		j := strings.LastIndexByte(path, ']')
		if j < i {
			return ref, path, "", pathUnparsed
		}
		head, tail = path[:i], path[j+1:]
		if tail != "" && (tail[0] != '.' || !validAttrNameText(tail[1:])) {
			return ref, path, "", pathUnparsed
		}
		ref.filtered = true
	}
	name = head + tail
	var scope *schema.Schema
	rest := head
	switch {
	case hasPrefixFold(head, rs.Core.ID+":"):
		// The core URN adds nothing to a core attribute's name: take it off, so that the applier sees one
		// spelling of each attribute.
		rest = head[len(rs.Core.ID)+1:]
		path = path[len(rs.Core.ID)+1:]
	default:
		for i, e := range rs.Extensions {
			if strings.EqualFold(head, e.ID) && !ref.filtered && tail == "" {
				ref.ref = AttrRef{SchemaID: e.ID, Extension: true}
				return ref, path, "", pathKnown
			}
			if hasPrefixFold(head, e.ID+":") {
				scope, rest = &rs.Extensions[i], head[len(e.ID)+1:]
			}
		}
		if scope == nil && strings.HasPrefix(strings.ToLower(head), "urn:") {
			return ref, path, name, pathUnknown
		}
	}
	attrName, sub, hasSub := strings.Cut(rest, ".")
	if !validAttrNameText(attrName) || (hasSub && (!validAttrNameText(sub) || ref.filtered)) {
		return ref, path, "", pathUnparsed
	}
	var found bool
	core := scope == nil && rest != head
	switch {
	case scope != nil:
		var a schema.CoreAttribute
		if a, found = scope.Attributes.ContainsAttribute(attrName); found {
			ref.ref = AttrRef{SchemaID: scope.ID, Extension: true, Attr: a}
		}
	case core:
		ref.ref, found = rs.lookupCore(attrName)
	default:
		ref.ref, found = rs.lookupUnqualified(attrName)
		if found && ref.ref.Extension {
			path = ref.ref.SchemaID + ":" + path
		}
	}
	if !found {
		return ref, path, name, pathUnknown
	}
	for _, s := range []struct {
		name string
		dst  **schema.CoreAttribute
	}{{sub, &ref.ref.Sub}, {strings.TrimPrefix(tail, "."), &ref.elemSub}} {
		if s.name == "" {
			continue
		}
		a, err := subAttribute(ref.ref.Attr, s.name)
		if err != nil {
			return ref, path, name, pathUnknown
		}
		*s.dst = &a
	}
	return ref, path, "", pathKnown
}

// checkValue takes the sub-attributes the target of a known path does not declare out of an add or replace
// value.
func (rs Schema) checkValue(ref patchPathRef, v any, t *Tolerated) {
	switch {
	case ref.ref.IsContainer():
		if obj, ok := jsonObject(v); ok {
			ext, _ := rs.extension(ref.ref.SchemaID)
			rs.checkExtensionObject(ext, obj, t)
		}
	case ref.ref.Sub == nil && ref.elemSub == nil:
		unknownSubs(ref.ref.Attr, ref.ref.Name(), v, t)
	}
}

// checkExtensionObject takes out of an extension's object (in a pathless PATCH value, or a PATCH whose path is
// the extension's URN) the keys the extension does not declare.
func (rs Schema) checkExtensionObject(ext schema.Schema, obj map[string]any, t *Tolerated) {
	for _, k := range sortedKeys(obj) {
		path := k
		if !hasPrefixFold(k, ext.ID+":") {
			path = ext.ID + ":" + k
		}
		ref, _, name, st := rs.resolvePatchPath(path)
		switch st {
		case pathUnknown:
			t.unknown(name)
			delete(obj, k)
		case pathKnown:
			rs.checkValue(ref, obj[k], t)
		}
	}
}

// TolerateOp prepares one decoded PATCH operation for validation (see NormalizeDocument): a path that names an
// attribute the schema does not declare drops the operation (keep is false); a pathless value loses such keys,
// has its core-URN container merged into it and its bare extension attributes qualified; a path that is the
// core schema's URN makes the operation pathless; unknown sub-attributes leave the value. changed reports any
// change to op, which is modified in place. Two values for one attribute in a pathless value are a 400
// invalidSyntax scimerrors.ScimError.
func (rs Schema) TolerateOp(op map[string]any, t *Tolerated) (keep, changed bool, err error) {
	opKey, pathKey, valueKey := opKeys(op)
	kind, _ := op[opKey].(string)
	kind = strings.ToLower(strings.TrimSpace(kind))
	rawPath, hasPath := op[pathKey].(string)
	path := strings.TrimSpace(rawPath)
	if hasPath && path != "" && strings.EqualFold(path, rs.Core.ID) {
		delete(op, pathKey)
		path, changed = "", true
	}
	if path != "" {
		ref, canonical, name, st := rs.resolvePatchPath(path)
		switch st {
		case pathUnknown:
			t.unknown(name)
			return false, true, nil
		case pathKnown:
			if canonical != path {
				op[pathKey], changed = canonical, true
			}
			if kind != patchRemove {
				n := len(t.Unknown)
				rs.checkValue(ref, op[valueKey], t)
				changed = changed || len(t.Unknown) > n
			}
			if obj, isObj := op[valueKey].(map[string]any); isObj && ref.ref.IsContainer() && kind != patchRemove {
				// The library's path validator takes no schema URN for a path: the same
				// operation without one, its value keyed by the URN, is the same change.
				delete(op, pathKey)
				op[valueKey] = map[string]any{ref.ref.SchemaID: obj}
				changed = true
			}
		}
		return true, changed, nil
	}
	obj, ok := op[valueKey].(map[string]any)
	if !ok || (kind != patchAdd && kind != patchReplace) {
		return true, changed, nil
	}
	c, err := rs.tolerateObject(obj, t)
	return true, changed || c, err
}

// tolerateObject normalises the value of a pathless add or replace in place (see TolerateOp).
func (rs Schema) tolerateObject(obj map[string]any, t *Tolerated) (bool, error) {
	changed := false
	for _, k := range sortedKeys(obj) {
		if !strings.EqualFold(k, rs.Core.ID) {
			continue
		}
		inner, ok := jsonObject(obj[k])
		if !ok {
			return false, BadRequest(scimerrors.ScimTypeInvalidSyntax,
				"the value of %q must be an object of %s attributes, not %s", k, rs.Core.Name.Value(), describeJSON(obj[k]))
		}
		delete(obj, k)
		for _, ck := range sortedKeys(inner) {
			if err := mergeKey(obj, ck, inner[ck], k+"."+ck); err != nil {
				return false, err
			}
		}
		changed = true
	}
	for _, k := range sortedKeys(obj) {
		switch strings.ToLower(k) {
		case "id", "meta", "schemas":
			continue // not set by a PATCH; dropped downstream
		}
		if ext, ok := rs.extension(k); ok {
			inner, ok := jsonObject(obj[k])
			if !ok {
				continue // not an object: the validator refuses it
			}
			if k != ext.ID {
				// The validator finds an extension's object by its URN as the schema spells it.
				delete(obj, k)
				if err := mergeKey(obj, ext.ID, inner, k); err != nil {
					return false, err
				}
				changed = true
			}
			n := len(t.Unknown)
			rs.checkExtensionObject(ext, inner, t)
			changed = changed || len(t.Unknown) > n
			continue
		}
		ref, canonical, name, st := rs.resolvePatchPath(k)
		switch st {
		case pathUnknown:
			t.unknown(name)
			delete(obj, k)
			changed = true
		case pathKnown:
			v := obj[k]
			if canonical != k {
				delete(obj, k)
				if err := mergeKey(obj, canonical, v, k); err != nil {
					return false, err
				}
				changed = true
			}
			n := len(t.Unknown)
			rs.checkValue(ref, v, t)
			changed = changed || len(t.Unknown) > n
		}
	}
	return changed, nil
}

// opKeys returns the keys of a PATCH operation's op, path and value as the client spelled them.
func opKeys(op map[string]any) (opKey, pathKey, valueKey string) {
	opKey, pathKey, valueKey = "op", "path", "value"
	for k := range op {
		switch strings.ToLower(k) {
		case "op":
			opKey = k
		case "path":
			pathKey = k
		case "value":
			valueKey = k
		}
	}
	return opKey, pathKey, valueKey
}
