package openapi

import (
	"embed"
	"fmt"
	"sort"
	"strings"
	"sync"

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
		if err := c.AddResource(id, t.root); err != nil {
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

var printer = message.NewPrinter(language.English)

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
	sort.SliceStable(out, func(i, j int) bool { return out[i].Pointer < out[j].Pointer })
	return out
}

// leaves flattens e to the errors that caused it. Where a oneOf or anyOf
// failed, only the branches that got furthest into the document are
// kept: a parameter that is neither a Reference nor a valid Parameter
// should be told what is wrong with it as a Parameter, not that it lacks
// a $ref as well.
func leaves(e *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return []*jsonschema.ValidationError{e}
	}
	switch e.ErrorKind.(type) {
	case *kind.OneOf, *kind.AnyOf:
		best, bestDepth := [][]*jsonschema.ValidationError(nil), -1
		for _, c := range e.Causes {
			l := leaves(c)
			if onlyMissingRef(l) {
				continue
			}
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
		if len(best) == 1 {
			return best[0]
		}
		if len(best) == 0 || bestDepth == len(e.InstanceLocation) && len(best) > 1 {
			// Every branch failed at the value itself: say so once.
			return []*jsonschema.ValidationError{{InstanceLocation: e.InstanceLocation, ErrorKind: e.ErrorKind}}
		}
		var out []*jsonschema.ValidationError
		for _, l := range best {
			out = append(out, l...)
		}
		return out
	}
	var out []*jsonschema.ValidationError
	for _, c := range e.Causes {
		out = append(out, leaves(c)...)
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
	ptr := pointer(e.InstanceLocation)
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		out := make([]Problem, 0, len(k.Missing))
		for _, m := range k.Missing {
			out = append(out, Problem{Pointer: ptr + "/" + escapePointer(m), Message: "is required"})
		}
		return out
	case *kind.AdditionalProperties:
		out := make([]Problem, 0, len(k.Properties))
		for _, m := range k.Properties {
			out = append(out, Problem{Pointer: ptr + "/" + escapePointer(m), Message: "is not a known field"})
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
	}
	return []Problem{{Pointer: ptr, Message: e.ErrorKind.LocalizedString(printer)}}
}

func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(escapePointer(t))
	}
	return b.String()
}
