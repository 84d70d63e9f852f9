package openapi

import (
	"embed"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/gatehouse/gatehouse/internal/doctree"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// The OpenAPI Initiative's JSON Schemas of OpenAPI documents; see
// oas/README.md for where they come from.
//
//go:embed oas/*.yaml
var oasFiles embed.FS

const (
	oas30ID = "https://spec.openapis.org/oas/3.0/schema/WORK-IN-PROGRESS"
	// The 3.1 schema with Schema Objects checked against the OAS dialect.
	oas31ID = "https://spec.openapis.org/oas/3.1/schema-base/WORK-IN-PROGRESS"
)

var oasSchemas = sync.OnceValues(func() (map[string]*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	for file, id := range map[string]string{
		"oas/3.0-schema.yaml":      oas30ID,
		"oas/3.1-schema.yaml":      "https://spec.openapis.org/oas/3.1/schema/WORK-IN-PROGRESS",
		"oas/3.1-schema-base.yaml": oas31ID,
		"oas/3.1-dialect.yaml":     "https://spec.openapis.org/oas/3.1/dialect/WORK-IN-PROGRESS",
		"oas/3.1-meta.yaml":        "https://spec.openapis.org/oas/3.1/meta/WORK-IN-PROGRESS",
	} {
		data, err := oasFiles.ReadFile(file)
		if err != nil {
			return nil, err
		}
		t, problems := readTree(data)
		if problems != nil {
			return nil, fmt.Errorf("%s: %s", file, problems[0].Message)
		}
		if err := c.AddResource(id, t.Root); err != nil {
			return nil, err
		}
	}
	out := map[string]*jsonschema.Schema{}
	for minor, id := range map[string]string{"3.0": oas30ID, "3.1": oas31ID} {
		s, err := c.Compile(id)
		if err != nil {
			return nil, err
		}
		out[minor] = s
	}
	return out, nil
})

// schemaProblems validates a document's tree against the OAS schema of
// its minor version and turns the validator's tree of errors into one
// problem per leaf cause.
func schemaProblems(minor string, root any) []Problem {
	schemas, err := oasSchemas()
	if err != nil {
		// The schemas are embedded: only a broken build gets here.
		panic("openapi: the embedded OAS schemas do not compile: " + err.Error())
	}
	err = schemas[minor].Validate(root)
	if err == nil {
		return nil
	}
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return []Problem{{Message: err.Error()}}
	}
	var out []Problem
	seen := map[Problem]bool{}
	for _, leaf := range leaves(ve) {
		for _, p := range describe(leaf) {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// leaves flattens e to the errors that caused it. Where a oneOf or anyOf
// failed, each branch is a form the value could have taken, and most are
// not the one the author meant; only the likeliest are kept:
//   - not the Reference branch, when the value has no $ref;
//   - not branches whose value has the wrong type or a wrong constant
//     (`in: query` in the branch for path parameters), if another has
//     neither;
//   - of those left, the branches that got deepest into the value.
//
// If every branch failed on a constant or type, only those failures are
// kept, merged per pointer into one "must be one of": `in: body` is told
// the four places a parameter can be, not the rest of four forms.
func leaves(e *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return []*jsonschema.ValidationError{e}
	}
	switch e.ErrorKind.(type) {
	case *kind.OneOf, *kind.AnyOf:
	default:
		var out []*jsonschema.ValidationError
		for _, c := range e.Causes {
			out = append(out, leaves(c)...)
		}
		return out
	}
	var branches [][]*jsonschema.ValidationError
	for _, c := range e.Causes {
		if l := leaves(c); !onlyMissingRef(l) {
			branches = append(branches, l)
		}
	}
	if len(branches) == 0 {
		return []*jsonschema.ValidationError{{InstanceLocation: e.InstanceLocation, ErrorKind: e.ErrorKind}}
	}
	var right [][]*jsonschema.ValidationError
	for _, l := range branches {
		if !slices.ContainsFunc(l, wrongForm) {
			right = append(right, l)
		}
	}
	if len(right) == 0 {
		return mergeWrongForms(branches)
	}
	best, bestDepth := [][]*jsonschema.ValidationError(nil), -1
	for _, l := range right {
		d := 0
		for _, x := range l {
			d = max(d, len(x.InstanceLocation))
		}
		switch {
		case d > bestDepth:
			best, bestDepth = [][]*jsonschema.ValidationError{l}, d
		case d == bestDepth:
			best = append(best, l)
		}
	}
	if len(best) > 1 && bestDepth == len(e.InstanceLocation) {
		// Several forms failed at the value itself: say so once, naming
		// the members they want if that is what they lack.
		var members []string
		allRequired := true
		for _, l := range best {
			for _, x := range l {
				r, ok := x.ErrorKind.(*kind.Required)
				if !ok {
					allRequired = false
					break
				}
				members = append(members, r.Missing...)
			}
		}
		if allRequired && len(members) > 0 {
			return []*jsonschema.ValidationError{{InstanceLocation: e.InstanceLocation, ErrorKind: &needsOneOf{slices.Compact(members)}}}
		}
		return []*jsonschema.ValidationError{{InstanceLocation: e.InstanceLocation, ErrorKind: e.ErrorKind}}
	}
	var out []*jsonschema.ValidationError
	for _, l := range best {
		out = append(out, l...)
	}
	return out
}

// needsOneOf is a oneOf or anyOf whose every form lacks a member: the
// value needs one of them.
type needsOneOf struct{ members []string }

func (*needsOneOf) KeywordPath() []string { return nil }

func (k *needsOneOf) LocalizedString(*message.Printer) string {
	return "needs one of the members " + strings.Join(k.members, ", ")
}

// wrongForm reports whether e says the value is not of a branch's form
// at all: a wrong type, or not the constant the branch is keyed on.
func wrongForm(e *jsonschema.ValidationError) bool {
	switch e.ErrorKind.(type) {
	case *kind.Type, *kind.Const, *kind.Enum:
		return true
	}
	return false
}

// mergeWrongForms keeps the wrong-form failures of branches, with the
// constants and enums wanted at one pointer merged into one enum.
func mergeWrongForms(branches [][]*jsonschema.ValidationError) []*jsonschema.ValidationError {
	var out []*jsonschema.ValidationError
	enums := map[string]*kind.Enum{}
	for _, l := range branches {
		for _, x := range l {
			var want []any
			var got any
			switch k := x.ErrorKind.(type) {
			case *kind.Const:
				got, want = k.Got, []any{k.Want}
			case *kind.Enum:
				got, want = k.Got, k.Want
			case *kind.Type:
				out = append(out, x)
				continue
			default:
				continue
			}
			ptr := pointer("", x.InstanceLocation)
			if en, ok := enums[ptr]; ok {
				for _, w := range want {
					if !slices.Contains(en.Want, w) {
						en.Want = append(en.Want, w)
					}
				}
				continue
			}
			en := &kind.Enum{Got: got, Want: slices.Clone(want)}
			enums[ptr] = en
			out = append(out, &jsonschema.ValidationError{InstanceLocation: x.InstanceLocation, ErrorKind: en})
		}
	}
	// A value that is both of the wrong type for one form and not the
	// wanted constant of another is told the constants: they say more.
	if len(enums) > 0 {
		out = slices.DeleteFunc(out, func(x *jsonschema.ValidationError) bool {
			_, isType := x.ErrorKind.(*kind.Type)
			return isType && enums[pointer("", x.InstanceLocation)] != nil
		})
	}
	return out
}

// onlyMissingRef reports whether a branch failed only for lacking $ref:
// the Reference branch, beside the object the author meant to write.
func onlyMissingRef(l []*jsonschema.ValidationError) bool {
	for _, e := range l {
		r, ok := e.ErrorKind.(*kind.Required)
		if !ok || len(r.Missing) != 1 || r.Missing[0] != "$ref" {
			return false
		}
	}
	return len(l) > 0
}

// describe words one leaf error, naming the member at fault where the
// validator names only its object: a missing or unknown member is a
// problem at that member's pointer.
func describe(e *jsonschema.ValidationError) []Problem {
	ptr := pointer("", e.InstanceLocation)
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		out := make([]Problem, 0, len(k.Missing))
		for _, m := range k.Missing {
			out = append(out, Problem{Pointer: ptr + "/" + doctree.EscapeToken(m), Message: "is required"})
		}
		return out
	case *kind.AdditionalProperties:
		out := make([]Problem, 0, len(k.Properties))
		for _, m := range k.Properties {
			out = append(out, Problem{Pointer: ptr + "/" + doctree.EscapeToken(m), Message: "is not a known field"})
		}
		return out
	case *kind.FalseSchema:
		// unevaluatedProperties: false, in the 3.1 schemas.
		return []Problem{{Pointer: ptr, Message: "is not a known field"}}
	case *kind.OneOf:
		return []Problem{{Pointer: ptr, Message: "matches none of the forms allowed here"}}
	case *kind.AnyOf:
		return []Problem{{Pointer: ptr, Message: "matches none of the forms allowed here"}}
	case *kind.Type:
		return []Problem{{Pointer: ptr, Message: fmt.Sprintf("must be %s, not %s", strings.Join(k.Want, " or "), k.Got)}}
	case *kind.Not:
		// The 3.0 schema's way of saying "example or examples, not
		// both" and "schema or content, not both".
		return []Problem{{Pointer: ptr, Message: "combines members that exclude each other (example and examples, or schema and content)"}}
	case *kind.Format:
		if k.Want == "regex" {
			return nil // checker.pattern owns patterns, and bounds them too
		}
	}
	return []Problem{{Pointer: ptr, Message: e.ErrorKind.LocalizedString(message.NewPrinter(language.English))}}
}
