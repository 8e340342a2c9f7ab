package resource

import (
	"strings"

	scimerrors "github.com/elimity-com/scim/errors"
)

// Limits on what one request may ask of the document engine. filter-parser is a PEG
// parser that recurses once per nesting level (100,000 levels overflow the goroutine
// stack, which no recover catches) and costs microseconds per byte, and a PATCH is
// applied operation by operation, so each is bounded before any parsing or applying.
// The limits are far above what Okta and Entra ID send: single-comparison filters,
// value paths one level deep, and PATCHes of tens of operations (README, "Limits").
const (
	// MaxFilterLength is the longest filter, PATCH path, attributes list or sortBy
	// accepted, in bytes.
	MaxFilterLength = 4096
	// MaxFilterDepth is the deepest nesting of parentheses and value-filter brackets
	// in a filter or path.
	MaxFilterDepth = 16
	// MaxFilterTerms is the most comparisons (eq, pr, ...) in one filter or path.
	MaxFilterTerms = 64
	// MaxPatchOperations is the most operations in one PATCH request.
	MaxPatchOperations = 1000
	// MaxPatchScan is the most values one PATCH may examine one by one: an operation
	// with a value filter, on a sub-attribute of every element, or removing from a
	// list, examines each element of the list, so many of them on a long list (a
	// group's members) cost operations × members. Adding and removing listed members
	// uses an index instead and is not counted.
	MaxPatchScan = 1_000_000
	// MaxValues is the most values a multi-valued attribute (emails, phoneNumbers,
	// ...) may hold. Reference lists (a group's members) are exempt: their size is
	// the directory's, and adding to them is linear.
	MaxValues = 100
)

// CheckFilter bounds a filter, or a PATCH path with a value filter, before it is
// parsed: at most MaxFilterLength bytes, MaxFilterDepth levels of ( and [, and
// MaxFilterTerms comparisons. It reads the text once and stops at the first excess, so
// that any input is judged in time linear in the limit, not in the input. what names
// the input in the detail ("the filter", "the PATCH path"). A violation is a 400
// invalidFilter ScimError naming the limit. It checks no syntax: the parser does.
func CheckFilter(what, s string) error {
	if len(s) > MaxFilterLength {
		return BadRequest(scimerrors.ScimTypeInvalidFilter,
			"%s is %d bytes long; the limit is %d bytes", what, len(s), MaxFilterLength)
	}
	depth, terms := 0, 0
	inString := false
	wordStart := -1
	endWord := func(end int) error {
		if wordStart < 0 {
			return nil
		}
		w := s[wordStart:end]
		wordStart = -1
		if filterOperators[strings.ToLower(w)] {
			terms++
			if terms > MaxFilterTerms {
				return BadRequest(scimerrors.ScimTypeInvalidFilter,
					"%s has more than %d comparisons; the limit is %d", what, MaxFilterTerms, MaxFilterTerms)
			}
		}
		return nil
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"', ' ', '\t', '\n', '\r', '(', ')', '[', ']':
			if err := endWord(i); err != nil {
				return err
			}
		default:
			if wordStart < 0 {
				wordStart = i
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '(', '[':
			depth++
			if depth > MaxFilterDepth {
				return BadRequest(scimerrors.ScimTypeInvalidFilter,
					"%s nests parentheses or brackets more than %d levels deep; the limit is %d", what, MaxFilterDepth, MaxFilterDepth)
			}
		case ')', ']':
			if depth > 0 {
				depth--
			}
		}
	}
	return endWord(len(s))
}

// CheckAttrParam bounds an attributes, excludedAttributes or sortBy parameter, whose
// names are parsed as paths: the length of the whole parameter, and each name as
// CheckFilter does. name is the parameter's name for the detail.
func CheckAttrParam(name, value string) error {
	if len(value) > MaxFilterLength {
		return BadRequest(scimerrors.ScimTypeInvalidValue,
			"%s is %d bytes long; the limit is %d bytes", name, len(value), MaxFilterLength)
	}
	return CheckFilter(name, value)
}

// CheckPatchSize bounds the number of operations of a PATCH request (MaxPatchOperations):
// a 400 invalidValue ScimError naming the limit.
func CheckPatchSize(n int) error {
	if n > MaxPatchOperations {
		return BadRequest(scimerrors.ScimTypeInvalidValue,
			"the request has %d operations; the limit is %d per PATCH: send several requests", n, MaxPatchOperations)
	}
	return nil
}

// checkValueCount bounds the values of a multi-valued attribute (see MaxValues).
func checkValueCount(ref AttrRef, n int) error {
	if n > MaxValues && !isReference(ref.Attr) {
		return BadRequest(scimerrors.ScimTypeInvalidValue,
			"attribute %q would hold %d values; the limit is %d", ref.Name(), n, MaxValues)
	}
	return nil
}

// CheckValues reports a multi-valued attribute of res holding more than MaxValues
// values (reference lists exempt) as a 400 invalidValue ScimError naming the limit.
func (rs Schema) CheckValues(res map[string]any) error {
	for _, ref := range rs.topLevelRefs() {
		if !ref.Attr.MultiValued() {
			continue
		}
		if v, ok := ref.value(res); ok {
			if err := checkValueCount(ref, len(listOf(v))); err != nil {
				return err
			}
		}
	}
	return nil
}
