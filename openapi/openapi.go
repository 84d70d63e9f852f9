// Package openapi reads the OpenAPI descriptions (3.0 and 3.1, JSON or
// YAML) of the APIs behind the gateway: it checks a document when it is
// written, lists its operations for route import, and compiles it, once
// per deployment, into what the data plane checks requests and judges
// responses against.
//
// It does not import the domain package: the domain's Spec resource calls
// Parse to validate itself, and the policy package compiles what Parse
// accepted.
package openapi

import (
	"context"

	"github.com/getkin/kin-openapi/openapi3"
)

// Problem is one reason a document is refused, at a JSON pointer into it
// ("" is the whole document).
type Problem struct {
	Pointer string
	Message string
}

// Operation is one operation a document declares.
type Operation struct {
	// Method is upper case: GET, POST, ...
	Method string
	// Path is the document's path template, as written ("/pets/{petId}").
	Path string
	// OperationID is the operationId, "" if the document gives none.
	OperationID string
}

// Document is a description that Parse accepted.
type Document struct {
	// Version is the document's openapi member ("3.0.3", "3.1.0").
	Version    string
	Title      string
	Operations []Operation

	doc *openapi3.T
}

// Parse reads and checks a document given as JSON or YAML. It returns the
// document, or every problem found, each at its JSON pointer.
func Parse(data []byte) (*Document, []Problem) {
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, []Problem{{Message: err.Error()}}
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, []Problem{{Message: err.Error()}}
	}
	d := &Document{Version: doc.OpenAPI, doc: doc}
	if doc.Info != nil {
		d.Title = doc.Info.Title
	}
	if doc.Paths != nil {
		for _, path := range doc.Paths.InMatchingOrder() {
			for method, op := range doc.Paths.Value(path).Operations() {
				d.Operations = append(d.Operations, Operation{Method: method, Path: path, OperationID: op.OperationID})
			}
		}
	}
	return d, nil
}
