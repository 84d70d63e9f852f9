// Package schemaerr words what santhosh-tekuri/jsonschema found wrong
// with a document, for the content policy's 422 and the openapi policy's
// answers and findings alike: the same violations, messages, bound and
// order, each caller naming locations in its own style.
package schemaerr

import (
	"cmp"
	"container/heap"
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
	vs, _, ok = FirstLeaves(err, field, -1)
	return vs, ok
}

// FirstLeaves is Leaves cut at max (negative: no cut): the first max
// leaves in Leaves' order, and how many more there are. A hostile
// document can fail a schema millions of times; only the leaves kept are
// worded and named, and the cut is kept in a heap as the tree is walked,
// so the work past the validator's own is bounded by max, not by the
// document. A leaf saying what a kept one says is not counted; one
// saying what a dropped one said may be.
func FirstLeaves(err error, field func(loc []string) string, max int) (vs []Violation, unlisted int, ok bool) {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return nil, 0, false
	}
	h := &leafHeap{}
	seen := map[Violation]bool{}
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		for _, c := range e.Causes {
			walk(c)
		}
		if len(e.Causes) > 0 {
			return
		}
		// A leaf after the last kept by location alone is dropped unworded.
		if max >= 0 && len(*h) >= max && (max == 0 || slices.CompareFunc(e.InstanceLocation, (*h)[0].loc, compareToken) > 0) {
			unlisted++
			return
		}
		l := located{e.InstanceLocation, Violation{Field: field(e.InstanceLocation),
			Message: clip(e.ErrorKind.LocalizedString(printer), MaxMessage)}}
		if seen[l.Violation] {
			return
		}
		if max >= 0 && len(*h) >= max {
			if compareLocated(l, (*h)[0]) > 0 {
				unlisted++
				return
			}
			delete(seen, heap.Pop(h).(located).Violation)
			unlisted++
		}
		seen[l.Violation] = true
		heap.Push(h, l)
	}
	walk(ve)
	all := []located(*h)
	slices.SortStableFunc(all, compareLocated)
	vs = make([]Violation, len(all))
	for i, v := range all {
		vs[i] = v.Violation
	}
	return vs, unlisted, true
}

type located struct {
	loc []string
	Violation
}

func compareLocated(a, b located) int {
	if c := slices.CompareFunc(a.loc, b.loc, compareToken); c != 0 {
		return c
	}
	return strings.Compare(a.Message, b.Message)
}

// leafHeap keeps the last leaf in Leaves' order on top, the one a
// leaf before it displaces.
type leafHeap []located

func (h leafHeap) Len() int           { return len(h) }
func (h leafHeap) Less(i, j int) bool { return compareLocated(h[i], h[j]) > 0 }
func (h leafHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *leafHeap) Push(x any)        { *h = append(*h, x.(located)) }
func (h *leafHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
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
