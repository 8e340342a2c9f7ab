package resource

import (
	"strings"
)

// refBatch applies, in one pass, the operations of a PATCH that add values to or
// remove listed values from one reference list (a group's members), when no other
// operation of the request touches that list. Okta's Group Push sends a member add and
// one remove operation per leaving member in one request; applied one by one, each
// remove would rebuild a list of possibly 100,000 members. Here each operation costs
// its own values (an index lookup each, removed elements only marked), and the list is
// rebuilt once at the end. The result is the one the operations give in order: they
// are still checked in order (an invalid value fails its own operation), and no other
// operation reads the list in between.
type refBatch struct {
	ref     AttrRef
	started bool
	present bool // the attribute is set (getAttr's "exists"), as the operations so far leave it
	changed bool // some operation stored the list
	list    []any
	dead    []bool
	live    int
	at      map[string][]int // positions of the live elements with a string "value", by key
	ix      refIndex         // for its key function
}

// batchable reports whether the operations on attr may be batched: a multi-valued
// reference list whose changes cannot fail once their values are valid (not readOnly,
// immutable or required) and has no "primary" to settle.
func batchable(ref AttrRef) bool {
	attr := ref.Attr
	if ref.IsContainer() || ref.Sub != nil || !attr.MultiValued() || !isReference(attr) {
		return false
	}
	switch attr.Mutability() {
	case mutabilityReadOnly, mutabilityImmutable:
		return false
	}
	_, hasPrimary := attr.SubAttributes().ContainsAttribute("primary")
	return !attr.Required() && !hasPrimary
}

// planBatches returns, for each operation, the batch that applies it, or nil for an
// operation applied on its own.
func (p *patcher) planBatches(ops []PatchOp) []*refBatch {
	blocked := map[string]bool{}       // projKey of attributes some other operation touches
	blockedSchema := map[string]bool{} // lower-cased schema URNs an operation touches as a whole
	candidates := map[string][]int{}   // projKey -> operations that may be batched
	refs := map[string]AttrRef{}
	touch := func(ref AttrRef) {
		if ref.IsContainer() {
			blockedSchema[strings.ToLower(ref.SchemaID)] = true
			return
		}
		blocked[projKey(ref)] = true
	}
	for i, op := range ops {
		kind := strings.ToLower(strings.TrimSpace(op.Op))
		if op.Path == nil {
			p.touchedByValue(op.Value, touch)
			continue
		}
		ref, err := p.rs.ResolveAttrPath(op.Path.AttributePath)
		if err != nil {
			continue // the operation fails on its own
		}
		plain := op.Path.ValueExpression == nil && op.Path.SubAttribute == nil
		if plain && batchable(ref) && (kind == patchAdd || (kind == patchRemove && op.Value != nil)) {
			k := projKey(ref)
			candidates[k] = append(candidates[k], i)
			refs[k] = ref
			continue
		}
		touch(ref)
	}
	out := make([]*refBatch, len(ops))
	for k, idx := range candidates {
		ref := refs[k]
		if blocked[k] || blockedSchema[strings.ToLower(ref.SchemaID)] {
			continue
		}
		b := &refBatch{ref: ref}
		for _, i := range idx {
			out[i] = b
		}
	}
	return out
}

// touchedByValue reports to touch every attribute a pathless value names, as
// applyObject would resolve them; a schema named as a whole stands for all its
// attributes.
func (p *patcher) touchedByValue(v any, touch func(AttrRef)) {
	obj, ok := jsonObject(v)
	if !ok {
		return // the operation fails on its own
	}
	for k := range obj {
		if ref, ok := p.rs.containerRef(k); ok {
			touch(ref)
			continue
		}
		path, err := valueKeyPath(AttrRef{}, k)
		if err != nil {
			continue
		}
		if ref, err := p.rs.ResolveAttrPath(path.AttributePath); err == nil {
			touch(ref) // a schema URN blocks its every attribute
		}
	}
}

// start reads the list as the operations before the batch's first left it.
func (b *refBatch) start(p *patcher) {
	b.started = true
	cur, exists := getAttr(p.holder(b.ref, false), b.ref.Attr)
	b.present = exists
	b.list = append([]any(nil), listOf(cur)...)
	b.dead = make([]bool, len(b.list))
	b.live = len(b.list)
	b.ix = newRefIndex(b.ref.Attr, nil)
	b.at = make(map[string][]int, len(b.list))
	for i, e := range b.list {
		if k, ok := b.ix.key(e); ok {
			b.at[k] = append(b.at[k], i)
		}
	}
}

// record applies one operation of the batch, as setMulti (add) and removeAttr
// (remove) would.
func (b *refBatch) record(p *patcher, op PatchOp) error {
	if !b.started {
		b.start(p)
	}
	attr, name := b.ref.Attr, b.ref.Name()
	if strings.EqualFold(strings.TrimSpace(op.Op), patchRemove) {
		if !b.present {
			return nil
		}
		items, err := p.elements(attr, name, op.Value)
		if err != nil {
			return err
		}
		removed := false
		for _, it := range items {
			k, _ := b.ix.key(it) // elements gives every item of a reference list a string value
			for _, i := range b.at[k] {
				b.dead[i] = true
				b.live--
				removed = true
			}
			delete(b.at, k)
		}
		if removed {
			b.changed = true
			b.present = b.live > 0
		}
		return nil
	}
	items, err := p.elements(attr, name, op.Value)
	if err != nil || len(items) == 0 {
		return err
	}
	for _, it := range items {
		k, _ := b.ix.key(it)
		if len(b.at[k]) > 0 {
			continue
		}
		b.at[k] = []int{len(b.list)}
		b.list = append(b.list, it)
		b.dead = append(b.dead, false)
		b.live++
	}
	b.changed, b.present = true, true
	return nil
}

// finish stores the list the batch's operations leave.
func (b *refBatch) finish(p *patcher) error {
	if !b.changed {
		return nil
	}
	holder := p.holder(b.ref, false)
	if !b.present {
		if holder != nil {
			deleteAttr(holder, b.ref.Attr)
		}
		return nil
	}
	live := make([]any, 0, b.live)
	for i, e := range b.list {
		if !b.dead[i] {
			live = append(live, e)
		}
	}
	return p.storeList(b.ref, holder, live)
}
