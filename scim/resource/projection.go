package resource

import (
	"strings"

	"github.com/elimity-com/scim/schema"
	filter "github.com/scim2/filter-parser/v2"
)

// ParseAttrList splits the value of an "attributes" or "excludedAttributes" query parameter (RFC 7644 §3.9): a
// comma-separated list of attribute paths. Spaces around names and empty names are dropped; commas inside a
// value filter ([...]) or a quoted string do not split.
func ParseAttrList(s string) []string {
	var out []string
	depth := 0
	inString := false
	start := 0
	flush := func(end int) {
		if name := strings.TrimSpace(s[start:end]); name != "" {
			out = append(out, name)
		}
		start = end + 1
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '[':
			depth++
		case c == ']' && depth > 0:
			depth--
		case c == ',' && depth == 0:
			flush(i)
		}
	}
	flush(len(s))
	return out
}

// Project returns a copy of res holding what a response should carry under RFC 7644 §3.9 (res is not modified).
//
// With attributes, only the named attributes are returned, plus "id", "schemas" and every attribute whose
// returned characteristic is "always". Names are in standard attribute notation and any case: "userName",
// "name.givenName", "emails.value", "urn:...:enterprise:2.0:User:manager", an extension URN for the whole
// extension, or a value filter such as emails[type eq "work"] for some elements. excludedAttributes then removes
// the named attributes or sub-attributes, except id, schemas and "always" attributes. Unknown names are ignored.
// Attributes whose returned characteristic is "never" (password) are never returned, and "request" ones only
// when named.
func (rs Schema) Project(res map[string]any, attributes, excluded []string) map[string]any {
	out := map[string]any{}
	if res == nil {
		return out
	}
	sel := rs.selection(attributes)
	selecting := false
	for _, a := range attributes {
		selecting = selecting || strings.TrimSpace(a) != ""
	}

	// Unknown top-level members (not in any schema and not an extension object) pass through by default.
	if !selecting {
		for k, v := range res {
			if rs.knownTopLevelKey(k) {
				continue
			}
			out[k] = cloneJSON(v)
		}
	}

	for _, ref := range rs.topLevelRefs() {
		v, ok := ref.value(res)
		if !ok || v == nil {
			continue
		}
		attr := ref.Attr
		var pick *projPick
		switch {
		case attr.Returned() == returnedNever:
			continue
		case attr.Returned() == returnedAlways || strings.EqualFold(attr.Name(), "id") || (!ref.Extension && strings.EqualFold(attr.Name(), "schemas")):
			pick = &projPick{whole: true}
		case !selecting:
			if attr.Returned() == returnedRequest {
				continue
			}
			pick = &projPick{whole: true}
		default:
			p, ok := sel[projKey(ref)]
			if !ok {
				continue
			}
			pick = p
		}
		pv := pick.apply(attr, cloneJSON(v))
		if jsonEmpty(pv) && !(ref.Attr.Returned() == returnedAlways) {
			continue
		}
		holder := out
		if ref.Extension {
			m, ok := out[ref.SchemaID].(map[string]any)
			if !ok {
				m = map[string]any{}
				out[ref.SchemaID] = m
			}
			holder = m
		}
		holder[attr.Name()] = pv
	}

	rs.exclude(out, excluded)
	return out
}

// knownTopLevelKey tells whether k is a schema attribute or an extension URN of the resource type.
func (rs Schema) knownTopLevelKey(k string) bool {
	if _, ok := rs.extension(k); ok {
		return true
	}
	_, ok := rs.lookupCore(k)
	return ok
}

// projKey identifies a top-level attribute across core and extensions.
func projKey(ref AttrRef) string {
	return strings.ToLower(ref.SchemaID + "|" + ref.Attr.Name())
}

// projPick is what to keep of one attribute.
type projPick struct {
	whole   bool            // the whole value (of the selected elements)
	subs    map[string]bool // else these sub-attributes (canonical names)
	filters []predicate     // for a multi-valued attribute, keep the elements one of these matches
	all     bool            // some name selected the attribute without a value filter
}

// apply keeps the picked part of v, a private copy of the attribute's value.
func (pk *projPick) apply(attr schema.CoreAttribute, v any) any {
	keepSubs := func(e any) any {
		m, ok := jsonObject(e)
		if pk.whole || !ok {
			return stripNever(attr, e)
		}
		out := map[string]any{}
		for k, sv := range m {
			if s, ok := attr.SubAttributes().ContainsAttribute(k); ok && pk.subs[s.Name()] && s.Returned() != returnedNever {
				out[s.Name()] = sv
			}
		}
		return out
	}
	if !attr.MultiValued() {
		return keepSubs(v)
	}
	var out []any
	for _, e := range listOf(v) {
		if !pk.all && len(pk.filters) > 0 {
			m, ok := elementObject(attr, e)
			if !ok || !anyMatch(pk.filters, m) {
				continue
			}
		}
		if ne := keepSubs(e); !jsonEmpty(ne) {
			out = append(out, ne)
		}
	}
	return out
}

func anyMatch(ps []predicate, m map[string]any) bool {
	for _, p := range ps {
		if p(m) {
			return true
		}
	}
	return false
}

// stripNever drops the sub-attributes that are never returned.
func stripNever(attr schema.CoreAttribute, e any) any {
	m, ok := jsonObject(e)
	if !ok {
		return e
	}
	for _, s := range attr.SubAttributes() {
		if s.Returned() == returnedNever {
			deleteAttr(m, s)
		}
	}
	return m
}

// projTarget is one resolved name of an attributes or excludedAttributes list.
type projTarget struct {
	ref   AttrRef
	match predicate // value filter, or nil
	sub   *schema.CoreAttribute
}

// resolveProjName resolves one name; ok is false for names to ignore.
func (rs Schema) resolveProjName(name string) (projTarget, bool) {
	if ref, ok := rs.containerRef(strings.TrimSpace(name)); ok {
		return projTarget{ref: ref}, true
	}
	path, err := filter.ParsePath([]byte(strings.TrimSpace(name)))
	if err != nil {
		return projTarget{}, false
	}
	ref, err := rs.ResolveAttrPath(path.AttributePath)
	if err != nil {
		return projTarget{}, false
	}
	t := projTarget{ref: ref, sub: ref.Sub}
	if path.ValueExpression != nil {
		if ref.Sub != nil || ref.IsContainer() {
			return projTarget{}, false
		}
		attr := ref.Attr
		m, err := filterScope{rs: rs, elem: &attr}.compile(path.ValueExpression)
		if err != nil {
			return projTarget{}, false
		}
		t.match = m
		if s := path.SubAttributeName(); s != "" {
			sub, err := subAttribute(attr, s)
			if err != nil {
				return projTarget{}, false
			}
			t.sub = &sub
		}
	}
	return t, true
}

// selection builds the picks of an attributes list, keyed by projKey.
func (rs Schema) selection(names []string) map[string]*projPick {
	sel := map[string]*projPick{}
	for _, name := range names {
		t, ok := rs.resolveProjName(name)
		if !ok {
			continue
		}
		var refs []AttrRef
		if t.ref.IsContainer() {
			for _, r := range rs.topLevelRefs() {
				if r.Extension == t.ref.Extension && strings.EqualFold(r.SchemaID, t.ref.SchemaID) {
					refs = append(refs, r)
				}
			}
		} else {
			refs = []AttrRef{t.ref}
		}
		for _, r := range refs {
			k := projKey(r)
			pk, ok := sel[k]
			if !ok {
				pk = &projPick{subs: map[string]bool{}}
				sel[k] = pk
			}
			if t.sub == nil {
				pk.whole = true
			} else {
				pk.subs[t.sub.Name()] = true
			}
			if t.match == nil {
				pk.all = true
			} else {
				pk.filters = append(pk.filters, t.match)
			}
		}
	}
	return sel
}

// exclude removes the named attributes from out, a private copy.
func (rs Schema) exclude(out map[string]any, names []string) {
	for _, name := range names {
		t, ok := rs.resolveProjName(name)
		if !ok {
			continue
		}
		if t.ref.IsContainer() {
			if t.ref.Extension {
				for _, k := range sortedKeys(out) {
					if strings.EqualFold(k, t.ref.SchemaID) {
						delete(out, k)
					}
				}
			}
			continue
		}
		attr := t.ref.Attr
		if attr.Returned() == returnedAlways || strings.EqualFold(attr.Name(), "id") ||
			(!t.ref.Extension && strings.EqualFold(attr.Name(), "schemas")) {
			continue
		}
		holder := t.ref.holder(out)
		if holder == nil {
			continue
		}
		_, v, ok := lookupKey(holder, attr.Name())
		if !ok {
			continue
		}
		if t.sub == nil && t.match == nil {
			deleteAttr(holder, attr)
			continue
		}
		if !attr.MultiValued() {
			if m, ok := jsonObject(v); ok && t.sub != nil {
				deleteAttr(m, *t.sub)
				holder[attr.Name()] = m
				if jsonEmpty(m) {
					deleteAttr(holder, attr)
				}
			}
			continue
		}
		var kept []any
		for _, e := range listOf(v) {
			if t.match != nil {
				m, ok := elementObject(attr, e)
				if !ok || !t.match(m) {
					kept = append(kept, e)
					continue
				}
			}
			if t.sub == nil {
				continue
			}
			if m, ok := jsonObject(e); ok {
				deleteAttr(m, *t.sub)
				if jsonEmpty(m) {
					continue
				}
				e = m
			}
			kept = append(kept, e)
		}
		if len(kept) == 0 {
			deleteAttr(holder, attr)
		} else {
			holder[attr.Name()] = kept
		}
	}
	for _, e := range rs.Extensions {
		if k, v, ok := lookupKey(out, e.ID); ok && jsonEmpty(v) {
			delete(out, k)
		}
	}
}
