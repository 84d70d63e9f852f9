// Package schemaerr words what santhosh-tekuri/jsonschema found wrong
// with a document, for the content policy's 422 and the openapi policy's
// answers and findings alike: the same violations, messages, bound and
// order, each caller naming locations in its own style.
package schemaerr

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// MaxMessage bounds one violation's message in bytes: messages quote the
// offending value, which may be long.
const MaxMessage = 200

// Violation is one thing wrong with a document: where, in the caller's
// style, and what.
type Violation struct {
	Field   string
	Message string
}

// printer words the validator's messages.
var printer = message.NewPrinter(language.English)

// Leaves lists what a failed validation found: each leaf of the
// validator's tree (it nests what it found under what it was checking: a
// property, an item, a $ref, allOf), its instance location named by
// field and its message clipped to MaxMessage. The branches of an anyOf
// that say the same thing are said once. The validator's order follows
// map iteration: the list is sorted by location (array indexes by
// number, before names), then message, for a stable answer. ok is false
// when err is not a validation error.
func Leaves(err error, field func(loc []string) string) (vs []Violation, ok bool) {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return nil, false
	}
	type located struct {
		loc []string
		Violation
	}
	var all []located
	seen := map[Violation]bool{}
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			v := Violation{Field: field(e.InstanceLocation),
				Message: clip(e.ErrorKind.LocalizedString(printer), MaxMessage)}
			if !seen[v] {
				seen[v] = true
				all = append(all, located{e.InstanceLocation, v})
			}
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	slices.SortStableFunc(all, func(a, b located) int {
		if c := slices.CompareFunc(a.loc, b.loc, compareToken); c != 0 {
			return c
		}
		return strings.Compare(a.Message, b.Message)
	})
	vs = make([]Violation, len(all))
	for i, v := range all {
		vs[i] = v.Violation
	}
	return vs, true
}

// compareToken orders instance location tokens: numbers (array indexes)
// by value, before names.
func compareToken(a, b string) int {
	x, errA := strconv.Atoi(a)
	y, errB := strconv.Atoi(b)
	switch {
	case errA == nil && errB == nil:
		return cmp.Compare(x, y)
	case errA == nil:
		return -1
	case errB == nil:
		return 1
	}
	return strings.Compare(a, b)
}

// clip shortens s to at most n bytes, at a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
