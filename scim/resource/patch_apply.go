package resource

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/schema"
	filter "github.com/scim2/filter-parser/v2"
)

// PatchOp is one operation of a SCIM PATCH request (RFC 7644 §3.5.2). It mirrors elimity's scim.PatchOperation:
// Op is "add", "replace" or "remove" in any case, Path is the parsed "path" (nil when absent) and Value the JSON
// value as decoded (json.Number, float64 or int numbers are all accepted).
type PatchOp struct {
	Op    string
	Path  *filter.Path
	Value any
}

// Patch operation names.
const (
	patchAdd     = "add"
	patchReplace = "replace"
	patchRemove  = "remove"
)

// ApplyPatch applies ops, in order, to a deep copy of res and returns the copy; res itself is never modified.
// Either every operation applies or none does: on error the result is nil, and the error is a 400
// scimerrors.ScimError whose scimType is invalidSyntax (unknown op), invalidPath (unknown attribute or
// sub-attribute), invalidFilter (bad value filter), noTarget (remove without a path, or a replace whose value
// filter matches nothing), invalidValue (a value of the wrong type, several primary values, removing a required
// attribute) or mutability (a readOnly attribute, or a change to an immutable one), with a detail naming the
// operation and the attribute.
//
// RFC 7644 §3.5.2 semantics, plus what Okta and Entra ID send:
//   - add: a missing attribute is created; a single-valued one is replaced; a complex one has the given
//     sub-attributes merged in; a multi-valued one gets the new values appended, skipping duplicates (for
//     reference lists such as members, a value already present). A value filter with a sub-attribute,
//     emails[type eq "work"].value, sets the sub-attribute on the matching elements or, when none matches and the
//     filter is made of eq comparisons, appends a new element built from them ({"type":"work","value":...}).
//   - replace: the whole value of a simple or multi-valued attribute; the given sub-attributes of a complex one;
//     with a value filter the matching elements (or their sub-attribute); a value filter that matches nothing is
//     noTarget.
//   - remove: a path is required; removing an absent attribute or an unmatched value filter does nothing;
//     members[value eq "id"] removes the matching elements; path "members" with a value list (Entra) removes
//     only the listed elements.
//   - without a path the value is an object whose keys are attribute paths in any case: "displayName",
//     "name.givenName", "emails[type eq \"work\"].value", "urn:...:enterprise:2.0:User:manager", or an extension
//     URN holding an object of that extension's attributes. Its "id", "meta" and "schemas" keys are ignored
//     (Okta sends the id).
//   - a sub-attribute of a multi-valued attribute without a value filter, "emails.display", applies to every
//     element (an add or replace on an absent attribute creates one element).
//   - null or "" clears: the attribute (or sub-attribute) is removed.
//   - a bare string given for a complex attribute with a "value" sub-attribute (Entra's manager) becomes
//     {"value": string}; when the value of such a reference changes, its other sub-attributes ($ref,
//     displayName) are dropped unless given.
//   - "True"/"False" strings are accepted for booleans; setting "primary": true on one element of a
//     multi-valued attribute makes every other element non-primary.
//   - sub-attributes that the schema does not declare, or declares readOnly, are dropped from complex values,
//     as elimity does on POST and PUT.
func (rs Schema) ApplyPatch(res map[string]any, ops []PatchOp) (map[string]any, error) {
	if err := CheckPatchSize(len(ops)); err != nil {
		return nil, err
	}
	p := patcher{rs: rs, res: cloneResource(res)}
	batches := p.planBatches(ops)
	var order []*refBatch
	for i, op := range ops {
		var err error
		if b := batches[i]; b != nil {
			if !b.started {
				order = append(order, b)
			}
			err = b.record(&p, op)
		} else {
			err = p.apply(op)
		}
		if err != nil {
			return nil, describeOpError(i, len(ops), op, err)
		}
	}
	for _, b := range order {
		if err := b.finish(&p); err != nil {
			return nil, err
		}
	}
	p.tidyExtensions()
	return p.res, nil
}

// describeOpError prefixes the detail with the operation that failed.
func describeOpError(i, n int, op PatchOp, err error) error {
	se, ok := err.(scimerrors.ScimError)
	if !ok {
		se = BadRequest(scimerrors.ScimTypeInvalidValue, "%v", err)
	}
	where := strings.ToLower(strings.TrimSpace(op.Op))
	if op.Path != nil {
		where += " " + op.Path.String()
	}
	if n > 1 {
		se.Detail = fmt.Sprintf("operation %d (%s): %s", i+1, where, se.Detail)
	} else {
		se.Detail = fmt.Sprintf("%s: %s", where, se.Detail)
	}
	return se
}

// patcher applies operations to res, a deep copy it owns.
type patcher struct {
	rs   Schema
	res  map[string]any
	refs map[string]refCache // reference-list indexes, by projKey
	scan int                 // values examined one by one so far (see MaxPatchScan)
}

// spend counts n values examined one by one against MaxPatchScan.
func (p *patcher) spend(n int) error {
	p.scan += n
	if p.scan > MaxPatchScan {
		return BadRequest(scimerrors.ScimTypeInvalidValue,
			"the request examines more than %d values one by one (value filters or removals on long lists); the limit is %d: "+
				"list the values to add or remove instead of value filters, or send fewer operations per request", MaxPatchScan, MaxPatchScan)
	}
	return nil
}

// patchTarget is a resolved PATCH path.
type patchTarget struct {
	ref     AttrRef               // the attribute, with its sub-attribute for "name.givenName"
	match   predicate             // the value filter on elements, or nil
	expr    filter.Expression     // the value filter as parsed
	elemSub *schema.CoreAttribute // the sub-attribute after a value filter: emails[...].value
	text    string                // the path as written
}

func (p *patcher) apply(op PatchOp) error {
	kind := strings.ToLower(strings.TrimSpace(op.Op))
	switch kind {
	case patchAdd, patchReplace, patchRemove:
	default:
		return BadRequest(scimerrors.ScimTypeInvalidSyntax, "unknown op %q; use add, replace or remove", op.Op)
	}
	if op.Path == nil {
		if kind == patchRemove {
			return BadRequest(scimerrors.ScimTypeNoTarget, "remove needs a path naming what to remove")
		}
		obj, ok := jsonObject(op.Value)
		if !ok {
			return BadRequest(scimerrors.ScimTypeInvalidValue,
				"without a path the value must be an object of attributes, e.g. {\"displayName\": \"x\"}, not %s",
				describeJSON(op.Value))
		}
		return p.applyObject(kind, AttrRef{SchemaID: p.rs.Core.ID}, obj)
	}
	t, err := p.resolve(*op.Path)
	if err != nil {
		return err
	}
	return p.applyTarget(kind, t, op.Value)
}

// resolve checks a path against the schema.
func (p *patcher) resolve(path filter.Path) (patchTarget, error) {
	text := path.String()
	ref, err := p.rs.ResolveAttrPath(path.AttributePath)
	if err != nil {
		return patchTarget{}, BadRequest(scimerrors.ScimTypeInvalidPath, "%v", err)
	}
	t := patchTarget{ref: ref, text: text}
	if ref.IsContainer() {
		if path.ValueExpression != nil || path.SubAttribute != nil {
			return patchTarget{}, BadRequest(scimerrors.ScimTypeInvalidPath, "%q names a schema, which takes no filter or sub-attribute", text)
		}
		return t, nil
	}
	if path.ValueExpression != nil {
		if ref.Sub != nil {
			return patchTarget{}, BadRequest(scimerrors.ScimTypeInvalidPath,
				"a value filter must follow a multi-valued attribute, not the sub-attribute in %q", text)
		}
		if !ref.Attr.MultiValued() {
			return patchTarget{}, BadRequest(scimerrors.ScimTypeInvalidPath,
				"attribute %q is single-valued, so it takes no value filter [...]", ref.Name())
		}
		attr := ref.Attr
		m, err := filterScope{rs: p.rs, elem: &attr}.compile(path.ValueExpression)
		if err != nil {
			return patchTarget{}, err
		}
		t.match, t.expr = m, path.ValueExpression
		if sub := path.SubAttributeName(); sub != "" {
			s, err := subAttribute(attr, sub)
			if err != nil {
				return patchTarget{}, BadRequest(scimerrors.ScimTypeInvalidPath, "%v", err)
			}
			t.elemSub = &s
		}
	}
	return t, nil
}

// applyObject applies a pathless add or replace: every key of obj is a path within scope (the core schema, or an
// extension).
func (p *patcher) applyObject(kind string, scope AttrRef, obj map[string]any) error {
	keys := sortedKeys(obj)
	// Parents before children whatever their case: "name" before "name.givenName".
	sort.SliceStable(keys, func(i, j int) bool { return strings.ToLower(keys[i]) < strings.ToLower(keys[j]) })
	seen := map[string]string{}
	for _, k := range keys {
		v := obj[k]
		if !scope.Extension {
			switch strings.ToLower(k) {
			case "id", "meta", "schemas":
				// Server-managed; Okta sends the id with every pathless replace.
				continue
			}
		}
		if ref, ok := p.rs.containerRef(k); ok {
			if err := p.applyContainer(kind, ref, v); err != nil {
				return err
			}
			continue
		}
		path, err := valueKeyPath(scope, k)
		if err != nil {
			return BadRequest(scimerrors.ScimTypeInvalidPath, "%q in the value is not an attribute path", k)
		}
		t, err := p.resolve(path)
		if err != nil {
			return err
		}
		if t.ref.IsContainer() {
			if err := p.applyContainer(kind, t.ref, v); err != nil {
				return err
			}
			continue
		}
		canon := strings.ToLower(t.ref.Name())
		if t.expr != nil {
			canon = strings.ToLower(t.text)
		}
		if prev, dup := seen[canon]; dup {
			return BadRequest(scimerrors.ScimTypeInvalidValue, "the value names attribute %q twice (%q and %q)", t.ref.Name(), prev, k)
		}
		seen[canon] = k
		if err := p.applyTarget(kind, t, v); err != nil {
			return err
		}
	}
	return nil
}

// valueKeyPath parses a key of a pathless value: an attribute path, relative to the
// extension when scope is one.
func valueKeyPath(scope AttrRef, k string) (filter.Path, error) {
	if scope.Extension && !strings.HasPrefix(strings.ToLower(k), "urn:") {
		k = scope.SchemaID + ":" + k
	}
	return filter.ParsePath([]byte(k))
}

// applyContainer applies an operation whose target is a whole schema: the value is an object of its attributes.
func (p *patcher) applyContainer(kind string, ref AttrRef, v any) error {
	if kind == patchRemove || (kind == patchReplace && jsonEmpty(v)) {
		if !ref.Extension {
			return BadRequest(scimerrors.ScimTypeInvalidPath, "the core schema %q cannot be removed", ref.SchemaID)
		}
		for _, k := range sortedKeys(p.res) {
			if strings.EqualFold(k, ref.SchemaID) {
				delete(p.res, k)
			}
		}
		return nil
	}
	obj, ok := jsonObject(v)
	if !ok {
		if v == nil {
			return nil
		}
		return BadRequest(scimerrors.ScimTypeInvalidValue, "the value of %q must be an object of its attributes, not %s", ref.SchemaID, describeJSON(v))
	}
	return p.applyObject(kind, ref, obj)
}

// holder returns the object that holds ref's attribute; with create, a missing extension object is made (and
// its URN added to "schemas").
func (p *patcher) holder(ref AttrRef, create bool) map[string]any {
	if !ref.Extension {
		return p.res
	}
	k, v, ok := lookupKey(p.res, ref.SchemaID)
	if ok {
		if m, isObj := v.(map[string]any); isObj {
			return m
		}
		if !create {
			return nil
		}
		delete(p.res, k)
	}
	if !create {
		return nil
	}
	m := map[string]any{}
	p.res[ref.SchemaID] = m
	p.addSchemaURN(ref.SchemaID)
	return m
}

// addSchemaURN lists an extension in "schemas" once it has data (RFC 7643 §3).
func (p *patcher) addSchemaURN(urn string) {
	k, v, ok := lookupKey(p.res, "schemas")
	if !ok {
		return
	}
	l, ok := jsonList(v)
	if !ok {
		return
	}
	for _, s := range l {
		if str, isStr := s.(string); isStr && strings.EqualFold(str, urn) {
			return
		}
	}
	p.res[k] = append(append([]any{}, l...), urn)
}

// tidyExtensions drops extension objects left empty.
func (p *patcher) tidyExtensions() {
	for _, e := range p.rs.Extensions {
		k, v, ok := lookupKey(p.res, e.ID)
		if ok && jsonEmpty(v) {
			delete(p.res, k)
		}
	}
}

// getAttr returns the current value of attr in holder.
func getAttr(holder map[string]any, attr schema.CoreAttribute) (any, bool) {
	if holder == nil {
		return nil, false
	}
	_, v, ok := lookupKey(holder, attr.Name())
	if ok && v == nil {
		return nil, false
	}
	return v, ok
}

// setAttr stores v under the canonical name of attr, replacing a key in another case.
func setAttr(holder map[string]any, attr schema.CoreAttribute, v any) {
	deleteAttr(holder, attr)
	holder[attr.Name()] = v
}

// deleteAttr removes attr, in whatever case its key was written.
func deleteAttr(holder map[string]any, attr schema.CoreAttribute) {
	for _, k := range sortedKeys(holder) {
		if strings.EqualFold(k, attr.Name()) {
			delete(holder, k)
		}
	}
}

// isClear tells whether a value asks to clear its target: null or "".
func isClear(v any) bool {
	if v == nil {
		return true
	}
	s, ok := v.(string)
	return ok && s == ""
}

func (p *patcher) applyTarget(kind string, t patchTarget, v any) error {
	if t.ref.IsContainer() {
		return p.applyContainer(kind, t.ref, v)
	}
	attr := t.ref.Attr
	name := t.ref.Name()
	if attr.Mutability() == mutabilityReadOnly {
		return BadRequest(scimerrors.ScimTypeMutability, "attribute %q is read-only", name)
	}
	for _, s := range []*schema.CoreAttribute{t.ref.Sub, t.elemSub} {
		if s != nil && s.Mutability() == mutabilityReadOnly {
			return BadRequest(scimerrors.ScimTypeMutability, "sub-attribute %q of %q is read-only", s.Name(), attr.Name())
		}
	}
	switch {
	case t.match != nil:
		return p.applyFiltered(kind, t, v)
	case t.ref.Sub != nil:
		return p.applySub(kind, t, v)
	case kind == patchRemove:
		return p.removeAttr(t, v)
	case attr.MultiValued():
		return p.setMulti(kind, t, v)
	case attr.AttributeType() == typeComplex:
		return p.setComplex(t, v)
	default:
		return p.setSimple(t, v)
	}
}

// removeAttr removes a whole attribute, or for a multi-valued attribute with a value only the listed elements.
func (p *patcher) removeAttr(t patchTarget, v any) error {
	attr, name := t.ref.Attr, t.ref.Name()
	holder := p.holder(t.ref, false)
	cur, exists := getAttr(holder, attr)
	if !exists {
		return nil
	}
	if attr.MultiValued() && v != nil {
		// Only the listed values go; an empty list removes nothing (never the whole attribute).
		items, err := p.elements(attr, name, v)
		if err != nil || len(items) == 0 {
			return err
		}
		old := listOf(cur)
		var kept []any
		ix := newRefIndex(attr, nil)
		cost := len(old)
		if ix.seen == nil {
			cost *= len(items)
		}
		if err := p.spend(cost); err != nil {
			return err
		}
		if ix.seen != nil {
			// A reference list: every item has a "value" (elements), so this is
			// matchesAny's choice made with one lookup per element.
			for _, it := range items {
				ix.add(it)
			}
			for _, e := range old {
				if k, ok := ix.key(e); !ok || !ix.seen[k] {
					kept = append(kept, e)
				}
			}
		} else {
			for _, e := range old {
				if !matchesAny(attr, e, items) {
					kept = append(kept, e)
				}
			}
		}
		if len(kept) == len(old) {
			return nil
		}
		if attr.Mutability() == mutabilityImmutable {
			return BadRequest(scimerrors.ScimTypeMutability, "attribute %q is immutable", name)
		}
		return p.storeList(t.ref, holder, kept)
	}
	if jsonEmpty(cur) {
		deleteAttr(holder, attr)
		return nil
	}
	if attr.Required() {
		return BadRequest(scimerrors.ScimTypeInvalidValue, "attribute %q is required and cannot be removed", name)
	}
	if attr.Mutability() == mutabilityImmutable {
		return BadRequest(scimerrors.ScimTypeMutability, "attribute %q is immutable", name)
	}
	deleteAttr(holder, attr)
	return nil
}

// listOf returns the elements of a multi-valued attribute's value.
func listOf(v any) []any {
	if v == nil {
		return nil
	}
	if l, ok := jsonList(v); ok {
		return l
	}
	return []any{v}
}

// storeList writes the elements of a multi-valued attribute, removing it when none remain. A list may not grow
// past MaxValues (a stored list already longer may still shrink).
func (p *patcher) storeList(ref AttrRef, holder map[string]any, list []any) error {
	if len(list) > MaxValues {
		cur, _ := getAttr(holder, ref.Attr)
		if len(list) > len(listOf(cur)) {
			if err := checkValueCount(ref, len(list)); err != nil {
				return err
			}
		}
	}
	if len(list) == 0 {
		if ref.Attr.Required() {
			return BadRequest(scimerrors.ScimTypeInvalidValue, "attribute %q is required and cannot be left empty", ref.Name())
		}
		if holder != nil {
			deleteAttr(holder, ref.Attr)
		}
		return nil
	}
	if holder == nil {
		holder = p.holder(ref, true)
	}
	setAttr(holder, ref.Attr, list)
	return nil
}

// setMulti adds to or replaces a whole multi-valued attribute.
func (p *patcher) setMulti(kind string, t patchTarget, v any) error {
	attr, name := t.ref.Attr, t.ref.Name()
	holder := p.holder(t.ref, false)
	cur, _ := getAttr(holder, attr)
	old := listOf(cur)
	items, err := p.elements(attr, name, v)
	if err != nil {
		return err
	}
	var next []any
	var chosen []int
	var refs refIndex
	if kind == patchReplace {
		next = items
		for i := range next {
			chosen = append(chosen, i)
		}
	} else {
		// Appending in place, amortised O(1): old stays as it was up to its length. An
		// immutable attribute compares old with next afterwards, so it gets a copy.
		next = old
		if attr.Mutability() == mutabilityImmutable {
			next = append([]any{}, old...)
		}
		var err error
		if refs, err = p.refIndexOf(t.ref, old); err != nil {
			return err
		}
		for _, it := range items {
			if k, ok := refs.key(it); ok {
				if refs.seen[k] {
					continue
				}
				refs.seen[k] = true
			} else {
				if err := p.spend(len(next)); err != nil {
					return err
				}
				if containsElement(attr, next, it) {
					continue
				}
				refs.add(it)
			}
			next = append(next, it)
			chosen = append(chosen, len(next)-1)
			if err := checkValueCount(t.ref, len(next)); err != nil && len(next) > len(old) {
				return err // before comparing the rest of a long list of new values one by one
			}
		}
	}
	if err := settlePrimary(attr, name, next, chosen); err != nil {
		return err
	}
	if attr.Mutability() == mutabilityImmutable && len(old) > 0 && !jsonEqual(old, next) {
		return BadRequest(scimerrors.ScimTypeMutability, "attribute %q is immutable", name)
	}
	if kind == patchAdd && len(items) == 0 {
		return nil
	}
	if err := p.storeList(t.ref, holder, next); err != nil {
		return err
	}
	if kind == patchAdd {
		p.keepRefIndex(t.ref, next, refs)
	}
	return nil
}

// setComplex adds or replaces the sub-attributes of a single-valued complex attribute.
func (p *patcher) setComplex(t patchTarget, v any) error {
	attr, name := t.ref.Attr, t.ref.Name()
	holder := p.holder(t.ref, false)
	cur, _ := getAttr(holder, attr)
	if isClear(v) {
		return p.clearAttr(t.ref, holder, cur)
	}
	patch, err := p.complexValue(attr, name, v, true)
	if err != nil {
		return err
	}
	old, _ := jsonObject(cur)
	next := mergeComplex(attr, old, patch)
	if attr.Mutability() == mutabilityImmutable && !jsonEmpty(old) && !jsonEqual(old, next) {
		return BadRequest(scimerrors.ScimTypeMutability, "attribute %q is immutable", name)
	}
	if jsonEmpty(next) {
		return p.clearAttr(t.ref, holder, cur)
	}
	setAttr(p.holder(t.ref, true), attr, next)
	return nil
}

// clearAttr removes an attribute because its new value is null, "" or empty.
func (p *patcher) clearAttr(ref AttrRef, holder map[string]any, cur any) error {
	if jsonEmpty(cur) {
		if holder != nil {
			deleteAttr(holder, ref.Attr)
		}
		return nil
	}
	if ref.Attr.Required() {
		return BadRequest(scimerrors.ScimTypeInvalidValue, "attribute %q is required and cannot be cleared", ref.Name())
	}
	if ref.Attr.Mutability() == mutabilityImmutable {
		return BadRequest(scimerrors.ScimTypeMutability, "attribute %q is immutable", ref.Name())
	}
	deleteAttr(holder, ref.Attr)
	return nil
}

// isReference tells whether a complex attribute points at another resource by its "value" (manager, members,
// groups): its other sub-attributes describe that value.
func isReference(attr schema.CoreAttribute) bool {
	subs := attr.SubAttributes()
	_, hasValue := subs.ContainsAttribute("value")
	_, hasRef := subs.ContainsAttribute("$ref")
	return hasValue && hasRef
}

// mergeComplex merges patch (nil members clear) into a copy of old. When a reference's value changes, the
// sub-attributes that described the old value are dropped unless patch gives them.
func mergeComplex(attr schema.CoreAttribute, old, patch map[string]any) map[string]any {
	next := map[string]any{}
	oldValue, _ := getSubValue(old, "value")
	newValue, hasNewValue := patch["value"]
	if !(isReference(attr) && hasNewValue && !jsonEqual(oldValue, newValue)) {
		for k, e := range old {
			if s, ok := attr.SubAttributes().ContainsAttribute(k); ok {
				next[s.Name()] = e
			} else {
				next[k] = e
			}
		}
	}
	for k, e := range patch {
		if e == nil {
			delete(next, k)
			continue
		}
		next[k] = e
	}
	if isReference(attr) && jsonEmpty(next["value"]) && !jsonEmpty(oldValue) {
		// The reference itself was cleared: what is left describes nothing.
		return map[string]any{}
	}
	return next
}

// getSubValue reads a sub-attribute of an element in any case.
func getSubValue(m map[string]any, name string) (any, bool) {
	if m == nil {
		return nil, false
	}
	_, v, ok := lookupKey(m, name)
	return v, ok && v != nil
}

// setSimple adds or replaces a single-valued simple attribute.
func (p *patcher) setSimple(t patchTarget, v any) error {
	attr, name := t.ref.Attr, t.ref.Name()
	holder := p.holder(t.ref, false)
	cur, _ := getAttr(holder, attr)
	if l, ok := jsonList(v); ok && len(l) == 1 {
		v = l[0]
	}
	if isClear(v) {
		return p.clearAttr(t.ref, holder, cur)
	}
	nv, err := p.simpleValue(attr, name, v)
	if err != nil {
		return err
	}
	if attr.Mutability() == mutabilityImmutable && !jsonEmpty(cur) && !jsonEqual(cur, nv) {
		return BadRequest(scimerrors.ScimTypeMutability, "attribute %q is immutable", name)
	}
	setAttr(p.holder(t.ref, true), attr, nv)
	return nil
}

// applySub applies an operation to a sub-attribute named without a value filter: "name.givenName", or
// "emails.display" on every element of a multi-valued attribute.
func (p *patcher) applySub(kind string, t patchTarget, v any) error {
	attr, sub, name := t.ref.Attr, *t.ref.Sub, t.ref.Name()
	holder := p.holder(t.ref, false)
	cur, exists := getAttr(holder, attr)
	clear := kind == patchRemove || isClear(v)
	if !exists && clear {
		return nil
	}
	if attr.MultiValued() {
		if err := p.spend(len(listOf(cur))); err != nil {
			return err
		}
	}
	var nv any
	if !clear {
		var err error
		if nv, err = p.subValue(sub, name, v); err != nil {
			return err
		}
	}

	if !attr.MultiValued() {
		old, _ := jsonObject(cur)
		patch := map[string]any{sub.Name(): nv}
		if err := checkSubMutability(sub, name, old, nv); err != nil {
			return err
		}
		next := mergeComplex(attr, old, patch)
		if jsonEmpty(next) {
			return p.clearAttr(t.ref, holder, cur)
		}
		setAttr(p.holder(t.ref, true), attr, next)
		return nil
	}

	old := listOf(cur)
	if len(old) == 0 {
		// Nothing to set the sub-attribute on: the value becomes the attribute's first element.
		return p.storeList(t.ref, holder, []any{map[string]any{sub.Name(): nv}})
	}
	next, chosen, err := setSubOnElements(old, sub, name, nv, func(int) bool { return true })
	if err != nil {
		return err
	}
	if sub.Name() == "primary" && nv == true {
		if err := settlePrimary(attr, name, next, chosen); err != nil {
			return err
		}
	}
	return p.storeList(t.ref, holder, next)
}

// setSubOnElements sets sub to nv (nil removes it) on the elements of old that
// selected picks, and drops those it leaves empty. written are the positions in next
// of the elements it set.
func setSubOnElements(old []any, sub schema.CoreAttribute, name string, nv any, selected func(int) bool) (next []any, written []int, err error) {
	next = make([]any, 0, len(old))
	for i, e := range old {
		m, ok := jsonObject(e)
		if !ok || !selected(i) {
			next = append(next, e)
			continue
		}
		if err := checkSubMutability(sub, name, m, nv); err != nil {
			return nil, nil, err
		}
		if m = withSub(m, sub, nv); jsonEmpty(m) {
			continue
		}
		next = append(next, m)
		written = append(written, len(next)-1)
	}
	return next, written, nil
}

// checkSubMutability refuses to change or remove an immutable sub-attribute that has a value.
func checkSubMutability(sub schema.CoreAttribute, name string, elem map[string]any, nv any) error {
	if sub.Mutability() != mutabilityImmutable {
		return nil
	}
	old, ok := getSubValue(elem, sub.Name())
	if ok && !jsonEmpty(old) && !jsonEqual(old, nv) {
		return BadRequest(scimerrors.ScimTypeMutability, "sub-attribute %q is immutable", name)
	}
	return nil
}

// withSub returns a copy of elem with sub set to nv (removed when nv is nil), keys canonicalised.
func withSub(elem map[string]any, sub schema.CoreAttribute, nv any) map[string]any {
	out := make(map[string]any, len(elem)+1)
	for k, e := range elem {
		if !strings.EqualFold(k, sub.Name()) {
			out[k] = e
		}
	}
	if nv != nil {
		out[sub.Name()] = nv
	}
	return out
}

// applyFiltered applies an operation whose path has a value filter: emails[type eq "work"],
// members[value eq "id"], emails[type eq "work"].value.
func (p *patcher) applyFiltered(kind string, t patchTarget, v any) error {
	attr := t.ref.Attr
	holder := p.holder(t.ref, false)
	cur, _ := getAttr(holder, attr)
	old := listOf(cur)
	if err := p.spend(len(old)); err != nil {
		return err
	}
	var hits []int
	for i, e := range old {
		if m, ok := elementObject(attr, e); ok && t.match(m) {
			hits = append(hits, i)
		}
	}
	clear := kind == patchRemove || isClear(v)

	if len(hits) == 0 {
		switch {
		case kind == patchRemove || clear:
			return nil
		case kind == patchReplace:
			return BadRequest(scimerrors.ScimTypeNoTarget, "no value of %q matches the filter [%v]", t.ref.Name(), t.expr)
		}
		return p.addFromFilter(t, holder, old, v)
	}

	hit := map[int]bool{}
	for _, i := range hits {
		hit[i] = true
	}
	var next []any
	var chosen []int

	if t.elemSub != nil {
		sub := *t.elemSub
		name := attr.Name() + "." + sub.Name()
		var nv any
		if !clear {
			var err error
			if nv, err = p.subValue(sub, name, v); err != nil {
				return err
			}
		}
		next, written, err := setSubOnElements(old, sub, name, nv, func(i int) bool { return hit[i] })
		if err != nil {
			return err
		}
		if sub.Name() == "primary" && nv == true {
			chosen = written
		}
		if err := settlePrimary(attr, t.ref.Name(), next, chosen); err != nil {
			return err
		}
		return p.storeList(t.ref, holder, next)
	}

	if clear {
		for i, e := range old {
			if !hit[i] {
				next = append(next, e)
			}
		}
		return p.storeList(t.ref, holder, next)
	}

	elem, err := p.oneElement(attr, t.ref.Name(), v, kind == patchAdd)
	if err != nil {
		return err
	}
	for i, e := range old {
		if !hit[i] {
			next = append(next, e)
			continue
		}
		var ne any = elem
		if kind == patchAdd {
			if m, ok := jsonObject(e); ok && attr.AttributeType() == typeComplex {
				ne = mergeComplex(attr, m, elem.(map[string]any))
			}
		} else if m, ok := elem.(map[string]any); ok {
			ne = dropNulls(m)
		}
		if jsonEmpty(ne) {
			continue
		}
		next = append(next, ne)
		chosen = append(chosen, len(next)-1)
	}
	if err := settlePrimary(attr, t.ref.Name(), next, primaryOnly(next, chosen)); err != nil {
		return err
	}
	return p.storeList(t.ref, holder, next)
}

// addFromFilter handles an add whose value filter matches no element: when the filter is made of eq
// comparisons joined by "and", it describes the element to create (Entra ID adds
// emails[type eq "work"].value this way).
func (p *patcher) addFromFilter(t patchTarget, holder map[string]any, old []any, v any) error {
	attr := t.ref.Attr
	seed, ok := p.filterSeed(attr, t.expr)
	if !ok || attr.AttributeType() != typeComplex {
		return BadRequest(scimerrors.ScimTypeNoTarget,
			"no value of %q matches the filter [%v], and the filter does not describe a value to add", t.ref.Name(), t.expr)
	}
	var elem map[string]any
	if t.elemSub != nil {
		nv, err := p.subValue(*t.elemSub, attr.Name()+"."+t.elemSub.Name(), v)
		if err != nil {
			return err
		}
		elem = withSub(seed, *t.elemSub, nv)
	} else {
		e, err := p.oneElement(attr, t.ref.Name(), v, true)
		if err != nil {
			return err
		}
		elem = dropNulls(mergeComplex(attr, seed, e.(map[string]any)))
	}
	next := append(append([]any{}, old...), elem)
	if err := settlePrimary(attr, t.ref.Name(), next, []int{len(next) - 1}); err != nil {
		return err
	}
	return p.storeList(t.ref, holder, next)
}

// filterSeed turns a value filter made of eq comparisons joined by "and" into the element it describes.
func (p *patcher) filterSeed(attr schema.CoreAttribute, expr filter.Expression) (map[string]any, bool) {
	switch e := expr.(type) {
	case *filter.AttributeExpression:
		if e == nil || !strings.EqualFold(string(e.Operator), string(filter.EQ)) || e.CompareValue == nil ||
			e.AttributePath.URI() != "" || e.AttributePath.SubAttributeName() != "" {
			return nil, false
		}
		sub, ok := attr.SubAttributes().ContainsAttribute(e.AttributePath.AttributeName)
		if !ok {
			return nil, false
		}
		cv := e.CompareValue
		if s, isStr := cv.(string); isStr {
			cv = unescapeFilterString(s)
		}
		nv, err := p.simpleValue(sub, attr.Name()+"."+sub.Name(), cv)
		if err != nil {
			return nil, false
		}
		return map[string]any{sub.Name(): nv}, true
	case *filter.LogicalExpression:
		if e == nil || !strings.EqualFold(string(e.Operator), string(filter.AND)) {
			return nil, false
		}
		left, ok := p.filterSeed(attr, e.Left)
		if !ok {
			return nil, false
		}
		right, ok := p.filterSeed(attr, e.Right)
		if !ok {
			return nil, false
		}
		for k, v := range right {
			if lv, dup := left[k]; dup && !jsonEqual(lv, v) {
				return nil, false
			}
			left[k] = v
		}
		return left, true
	}
	return nil, false
}

// primaryOnly keeps the indices whose element is primary.
func primaryOnly(list []any, idx []int) []int {
	var out []int
	for _, i := range idx {
		if m, ok := list[i].(map[string]any); ok && m["primary"] == true {
			out = append(out, i)
		}
	}
	return out
}

// settlePrimary enforces "primary": true on at most one element (RFC 7643 §2.4). chosen are the elements this
// operation wrote; if one of them is primary every other element loses primary, and two primaries are an error.
func settlePrimary(attr schema.CoreAttribute, name string, list []any, chosen []int) error {
	if _, ok := attr.SubAttributes().ContainsAttribute("primary"); !ok {
		return nil
	}
	winner := -1
	for _, i := range chosen {
		m, ok := list[i].(map[string]any)
		if !ok || m["primary"] != true {
			continue
		}
		if winner >= 0 {
			return BadRequest(scimerrors.ScimTypeInvalidValue, "only one value of %q may be primary", name)
		}
		winner = i
	}
	if winner < 0 {
		return nil
	}
	for i, e := range list {
		if i == winner {
			continue
		}
		if m, ok := e.(map[string]any); ok && m["primary"] == true {
			list[i] = withSubName(m, "primary", false)
		}
	}
	return nil
}

// withSubName returns a copy of m with key set to v.
func withSubName(m map[string]any, key string, v any) map[string]any {
	out := make(map[string]any, len(m))
	for k, e := range m {
		out[k] = e
	}
	out[key] = v
	return out
}

// dropNulls removes the "clear" markers (nil members) of a normalised complex value.
func dropNulls(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if v != nil {
			out[k] = v
		}
	}
	return out
}

// elements normalises the value given for a multi-valued attribute: an array, or a single element, each checked
// against the attribute's type; empty elements are dropped.
func (p *patcher) elements(attr schema.CoreAttribute, name string, v any) ([]any, error) {
	list, ok := jsonList(v)
	if !ok {
		list = []any{v}
	}
	var out []any
	for _, e := range list {
		if jsonEmpty(e) {
			continue
		}
		var ne any
		var err error
		if attr.AttributeType() == typeComplex {
			var m map[string]any
			m, err = p.complexValue(attr, name, e, false)
			ne = m
		} else {
			ne, err = p.simpleValue(attr, name, e)
		}
		if err != nil {
			return nil, err
		}
		if jsonEmpty(ne) {
			continue
		}
		if _, ok := stringValue(ne); !ok && attr.MultiValued() && isReference(attr) {
			// A reference without its "value" points at nothing; requiring it keeps adding
			// to and removing from a long list a matter of index lookups (refIndex).
			return nil, BadRequest(scimerrors.ScimTypeInvalidValue,
				"each value of %q needs a \"value\": the id of the resource it refers to", name)
		}
		out = append(out, ne)
	}
	return out, nil
}

// oneElement normalises the value given for the elements a value filter selects. keepNulls keeps nil members to
// clear sub-attributes when merging (add).
func (p *patcher) oneElement(attr schema.CoreAttribute, name string, v any, keepNulls bool) (any, error) {
	if l, ok := jsonList(v); ok {
		if len(l) != 1 {
			return nil, BadRequest(scimerrors.ScimTypeInvalidValue,
				"a path with a value filter selects single values of %q; give one value, not %d", name, len(l))
		}
		v = l[0]
	}
	if attr.AttributeType() == typeComplex {
		return p.complexValue(attr, name, v, keepNulls)
	}
	return p.simpleValue(attr, name, v)
}

// subValue normalises the value of a sub-attribute; nil when it clears.
func (p *patcher) subValue(sub schema.CoreAttribute, name string, v any) (any, error) {
	if l, ok := jsonList(v); ok && len(l) == 1 && !sub.MultiValued() {
		v = l[0]
	}
	if isClear(v) {
		return nil, nil
	}
	return p.simpleValue(sub, name, v)
}

// complexValue checks an object against a complex attribute and returns it with canonical sub-attribute names.
// Unknown and readOnly sub-attributes are dropped; null or "" members are dropped, or kept as nil (meaning
// "clear") with keepNulls. A bare string stands for {"value": string} when the attribute has a "value".
func (p *patcher) complexValue(attr schema.CoreAttribute, name string, v any, keepNulls bool) (map[string]any, error) {
	m, ok := jsonObject(v)
	if !ok {
		_, hasValue := attr.SubAttributes().ContainsAttribute("value")
		s, isStr := v.(string)
		if !isStr || !hasValue {
			return nil, BadRequest(scimerrors.ScimTypeInvalidValue,
				"attribute %q is complex: give an object of its sub-attributes (%s), not %s",
				name, subAttributeNames(attr), describeJSON(v))
		}
		m = map[string]any{"value": s}
	}
	out := make(map[string]any, len(m))
	seen := map[string]string{}
	for _, k := range sortedKeys(m) {
		sub, ok := attr.SubAttributes().ContainsAttribute(k)
		if !ok || sub.Mutability() == mutabilityReadOnly {
			continue
		}
		if prev, dup := seen[sub.Name()]; dup {
			return nil, BadRequest(scimerrors.ScimTypeInvalidValue, "%q is given twice in %q (%q and %q)", sub.Name(), name, prev, k)
		}
		seen[sub.Name()] = k
		sv := m[k]
		if isClear(sv) {
			if keepNulls {
				out[sub.Name()] = nil
			}
			continue
		}
		nv, err := p.simpleValue(sub, name+"."+sub.Name(), sv)
		if err != nil {
			return nil, err
		}
		out[sub.Name()] = nv
	}
	return out, nil
}

func subAttributeNames(attr schema.CoreAttribute) string {
	var names []string
	for _, s := range attr.SubAttributes() {
		names = append(names, s.Name())
	}
	return strings.Join(names, ", ")
}

// simpleValue checks a value against a simple attribute type and returns the value to store.
func (p *patcher) simpleValue(attr schema.CoreAttribute, name string, v any) (any, error) {
	typ := attr.AttributeType()
	bad := func(want string) error {
		return BadRequest(scimerrors.ScimTypeInvalidValue, "attribute %q must be %s, not %s", name, want, describeJSON(v))
	}
	switch typ {
	case typeString, typeReference:
		if s, ok := v.(string); ok {
			return s, nil
		}
		return nil, bad("a string")
	case typeBinary:
		s, ok := v.(string)
		if !ok {
			return nil, bad("a base64 string")
		}
		if _, err := base64.StdEncoding.DecodeString(s); err != nil {
			return nil, bad("a base64 string")
		}
		return s, nil
	case typeBoolean:
		if b, ok := parseBoolValue(v); ok {
			return b, nil
		}
		return nil, bad("true or false")
	case typeInteger, typeDecimal:
		n, ok := toNumber(v)
		if !ok || (typ == typeInteger && !n.integral()) {
			return nil, bad("a " + map[string]string{typeInteger: "whole number", typeDecimal: "number"}[typ])
		}
		if s, isStr := v.(string); isStr {
			return json.Number(strings.TrimSpace(s)), nil
		}
		return v, nil
	case typeDateTime:
		s, ok := v.(string)
		if !ok {
			return nil, bad("a dateTime string such as \"2024-01-31T00:00:00Z\"")
		}
		if _, ok := parseDateTime(s); !ok {
			return nil, bad("a dateTime string such as \"2024-01-31T00:00:00Z\"")
		}
		return s, nil
	case typeComplex:
		return p.complexValue(attr, name, v, false)
	}
	return nil, bad("a value of type " + typ)
}

// describeJSON names the JSON type of v for an error message.
func describeJSON(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case string:
		if len(t) > 40 {
			t = t[:40] + "..."
		}
		return fmt.Sprintf("the string %q", t)
	case bool:
		return fmt.Sprintf("the boolean %t", t)
	}
	if _, ok := jsonObject(v); ok {
		return "an object"
	}
	if _, ok := jsonList(v); ok {
		return "an array"
	}
	if _, ok := toNumber(v); ok {
		return fmt.Sprintf("the number %v", v)
	}
	return fmt.Sprintf("a %T", v)
}

// containsElement tells whether list already holds it: an equal element, or for a reference list (members,
// groups) an element with the same value.
func containsElement(attr schema.CoreAttribute, list []any, it any) bool {
	for _, e := range list {
		if jsonEqual(e, it) || sameReference(attr, e, it) {
			return true
		}
	}
	return false
}

// refIndex finds, in O(1), whether a reference list (members, groups) already holds
// an element with a given string "value": a group PATCH adding 10,000 members would
// otherwise compare each one with every member (containsElement), O(n²). For an item
// with a string "value", that is exactly containsElement: such an item equals an
// element (jsonEqual) or points at the same resource (sameReference) only if the
// element has the same string "value", compared as valuesEqual does (EqualFold unless
// the "value" is caseExact, which foldKey reproduces). Elements without a string
// "value" can never equal such an item, so the index leaves them out.
type refIndex struct {
	fold bool
	seen map[string]bool // nil: not a reference list
}

func newRefIndex(attr schema.CoreAttribute, list []any) refIndex {
	if !isReference(attr) {
		return refIndex{}
	}
	sub, ok := attr.SubAttributes().ContainsAttribute("value")
	ix := refIndex{fold: ok && !sub.CaseExact(), seen: make(map[string]bool, len(list))}
	for _, e := range list {
		ix.add(e)
	}
	return ix
}

// add records an element of the list.
func (ix *refIndex) add(e any) {
	if k, ok := ix.key(e); ok {
		ix.seen[k] = true
	}
}

// key is the index key of an element or item with a string "value".
func (ix refIndex) key(v any) (string, bool) {
	if ix.seen == nil {
		return "", false
	}
	s, ok := stringValue(v)
	if !ok {
		return "", false
	}
	if ix.fold {
		return foldKey(s), true
	}
	return s, true
}

func stringValue(v any) (string, bool) {
	m, ok := jsonObject(v)
	if !ok {
		return "", false
	}
	sv, _ := getSubValue(m, "value")
	s, ok := sv.(string)
	return s, ok
}

// foldKey maps s to a key that two strings share exactly when strings.EqualFold holds
// between them: each rune (U+FFFD for a byte that is not UTF-8, as EqualFold decodes
// it) becomes the smallest rune of its simple case-folding orbit, so that "k", "K" and
// the Kelvin sign share "K". For ASCII that smallest rune is the upper-case letter.
func foldKey(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToUpper(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s { // ranging decodes a bad byte as utf8.RuneError, as EqualFold does
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		b.WriteRune(least)
	}
	return b.String()
}

// refCache keeps a reference list's index between the operations of one PATCH, so
// that each add costs its own items, not the length of the list. It is valid while
// the attribute still holds list, the very slice it was built for: any operation that
// writes another slice makes it stale.
type refCache struct {
	list []any
	ix   refIndex
}

// refIndexOf returns the index of list, the current value of ref's attribute. Building
// one examines every element.
func (p *patcher) refIndexOf(ref AttrRef, list []any) (refIndex, error) {
	if c, ok := p.refs[projKey(ref)]; ok && len(c.list) == len(list) && (len(list) == 0 || &c.list[0] == &list[0]) {
		return c.ix, nil
	}
	if isReference(ref.Attr) {
		if err := p.spend(len(list)); err != nil {
			return refIndex{}, err
		}
	}
	return newRefIndex(ref.Attr, list), nil
}

// keepRefIndex records ix as the index of list, just stored for ref.
func (p *patcher) keepRefIndex(ref AttrRef, list []any, ix refIndex) {
	if ix.seen == nil {
		return
	}
	if p.refs == nil {
		p.refs = map[string]refCache{}
	}
	p.refs[projKey(ref)] = refCache{list: list, ix: ix}
}

// sameReference tells whether two elements of a reference list point at the same resource.
func sameReference(attr schema.CoreAttribute, a, b any) bool {
	if !isReference(attr) {
		return false
	}
	am, ok1 := jsonObject(a)
	bm, ok2 := jsonObject(b)
	if !ok1 || !ok2 {
		return false
	}
	av, ok1 := getSubValue(am, "value")
	bv, ok2 := getSubValue(bm, "value")
	return ok1 && ok2 && valuesEqual(attr, av, bv)
}

// valuesEqual compares two "value" sub-attribute values, folding case unless the sub-attribute is caseExact.
func valuesEqual(attr schema.CoreAttribute, a, b any) bool {
	as, ok1 := a.(string)
	bs, ok2 := b.(string)
	if ok1 && ok2 {
		if sub, ok := attr.SubAttributes().ContainsAttribute("value"); ok && !sub.CaseExact() {
			return strings.EqualFold(as, bs)
		}
		return as == bs
	}
	return jsonEqual(a, b)
}

// matchesAny tells whether element e is one of the items a remove lists. An item with a "value" selects by value
// (Entra sends {"value": id, "$ref": null}); other items must equal the element on every sub-attribute they give.
func matchesAny(attr schema.CoreAttribute, e any, items []any) bool {
	em, isObj := jsonObject(e)
	for _, it := range items {
		im, ok := it.(map[string]any)
		if !ok || !isObj {
			if jsonEqual(e, it) {
				return true
			}
			continue
		}
		if iv, ok := im["value"]; ok {
			ev, _ := getSubValue(em, "value")
			if valuesEqual(attr, ev, iv) {
				return true
			}
			continue
		}
		all := len(im) > 0
		for k, iv := range im {
			ev, _ := getSubValue(em, k)
			if !jsonEqual(ev, iv) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// jsonEqual compares two JSON values: numbers by value, objects ignoring null members.
func jsonEqual(a, b any) bool {
	if am, ok := jsonObject(a); ok {
		bm, ok := jsonObject(b)
		if !ok {
			return false
		}
		count := 0
		for k, av := range am {
			if av == nil {
				continue
			}
			count++
			bv, ok := bm[k]
			if !ok || !jsonEqual(av, bv) {
				return false
			}
		}
		for _, bv := range bm {
			if bv != nil {
				count--
			}
		}
		return count == 0
	}
	if al, ok := jsonList(a); ok {
		bl, ok := jsonList(b)
		if !ok || len(al) != len(bl) {
			return false
		}
		for i := range al {
			if !jsonEqual(al[i], bl[i]) {
				return false
			}
		}
		return true
	}
	if as, ok := a.(string); ok {
		// Before toNumber, which would try to parse every string as a number.
		bs, ok := b.(string)
		return ok && as == bs
	}
	if an, ok := toNumber(a); ok {
		if _, isStr := a.(string); !isStr {
			bn, ok := toNumber(b)
			_, bIsStr := b.(string)
			return ok && !bIsStr && an.cmp(bn) == 0
		}
	}
	switch av := a.(type) {
	case string:
		bv, ok := b.(string)
		return ok && av == bv
	case bool:
		bv, ok := b.(bool)
		return ok && av == bv
	case nil:
		return b == nil
	}
	return false
}
