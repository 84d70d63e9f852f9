package openapi

import "github.com/gatehouse/gatehouse/internal/doctree"

// Bounds on a document's shape, checked while it is read (see doctree):
// Parse runs on a write of up to 16 MiB, and a few bytes of YAML aliases
// or of nesting can stand for far more work than their size.
const (
	// MaxDepth is how deeply values may nest.
	MaxDepth = doctree.MaxDepth
	// MaxNodes is how many values a document may hold, every expansion
	// of a YAML alias counted again.
	MaxNodes = doctree.MaxNodes
)

// readTree reads a description into the generic tree the JSON Schema
// validator and the JSON encoder both take, keeping the order of /paths
// (the order of operations). It records no positions: Parse reports
// pointers only.
func readTree(data []byte) (*doctree.Tree, []Problem) {
	t, problems := doctree.Read(data, doctree.Options{What: "an OpenAPI document", Order: []string{"/paths"}})
	if problems != nil {
		out := make([]Problem, len(problems))
		for i, p := range problems {
			out[i] = Problem{Pointer: p.Pointer, Message: p.Message}
		}
		return nil, out
	}
	return t, nil
}
