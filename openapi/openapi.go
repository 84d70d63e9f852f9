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
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/gatehouse/gatehouse/internal/doctree"
	"github.com/gatehouse/gatehouse/internal/strictjson"
)

// Problem is one reason a document is refused, at a JSON pointer into it
// ("" is the whole document).
type Problem struct {
	Pointer string
	Message string
	// Unlisted is set only on the entry that ends a list cut at
	// MaxProblems: how many problems it stands for.
	Unlisted int
}

// MaxProblems is how many problems Parse lists; one more entry, at "",
// counts the rest. It is the rule of every gatehouse error list
// (strictjson.MaxErrors): a document can be wrong in a million places.
const MaxProblems = strictjson.MaxErrors

// Operation is one operation a document declares.
type Operation struct {
	// Method is upper case: GET, POST, ...
	Method string
	// Path is the document's path template, as written ("/pets/{petId}").
	Path string
	// OperationID is the operationId, "" if the document gives none.
	OperationID string
}

// Pointer is the JSON pointer (RFC 6901) of the operation in its
// document: "/paths/~1pets~1{petId}/get".
func (o Operation) Pointer() string {
	return "/paths/" + doctree.EscapeToken(o.Path) + "/" + strings.ToLower(o.Method)
}

// Document is a description that Parse accepted.
type Document struct {
	// Version is the document's openapi member ("3.0.3", "3.1.0").
	Version string
	// Title and APIVersion are info.title and info.version.
	Title      string
	APIVersion string
	// Operations are those of the document's paths: paths in document
	// order, and within a path GET HEAD POST PUT PATCH DELETE OPTIONS
	// TRACE. Webhooks and callbacks are requests the API makes, not
	// routes it serves, so they are not listed.
	Operations []Operation

	doc *openapi3.T
}

// Parse reads and checks a document given as JSON (when its first byte
// past white space is '{' or '[') or YAML. It returns the document, or
// every problem found (at most MaxProblems and one counting the rest),
// each at its JSON pointer. Cheapest first:
//   - reading, within the bounds on size, depth and YAML aliases, and
//     the openapi member: 3.0.x or 3.1.x; a failure here ends Parse;
//   - the OpenAPI Initiative's JSON Schema of that version, and what it
//     cannot say: $refs (and discriminator mappings) local, resolvable
//     and not looping, bounds on enums, patterns that Go's regexp
//     compiles, paths and operations, unique operationIds, and what
//     kin-openapi cannot load; all of these are reported together;
//   - only then kin-openapi's loader and its Validate, whose error names
//     no pointer and is given at "".
//
// Parse never reads a file or the network: external $refs are refused.
// It is safe for concurrent use.
func Parse(data []byte) (*Document, []Problem) {
	t, problems := readTree(data)
	if problems != nil {
		return nil, problems
	}
	ver, minor, p := version(t.Root)
	if p != nil {
		return nil, []Problem{*p}
	}
	problems = schemaProblems(minor, t.Root)
	c := &checker{root: t.Root, chains: map[string]verdict{}}
	c.walk(t.Root, "", "", false)
	problems = append(problems, c.problems...)
	problems = append(problems, unloadable(t.Root)...)
	ops, opProblems := operations(t)
	problems = append(problems, opProblems...)
	if len(problems) > 0 {
		return nil, capProblems(problems)
	}
	doc, err := load(t)
	if err != nil {
		return nil, []Problem{{Message: err.Error()}}
	}
	d := &Document{Version: ver, Operations: ops, doc: doc}
	if doc.Info != nil {
		d.Title, d.APIVersion = doc.Info.Title, doc.Info.Version
	}
	// What the data plane could not validate is refused now, at its
	// pointer, rather than failing a deployment later.
	if _, problems := Compile(d, "/"); len(problems) > 0 {
		return nil, capProblems(problems)
	}
	return d, nil
}

// load gives the checked tree to kin-openapi, as JSON: kin then reads
// exactly the values checked above (no second YAML reading, no alias
// expanded again), and can read nothing else. The JSON goes to
// encoding/json, not to the loader's LoadFromData, which reads JSON with
// its YAML parser: that parser is superlinear on one long line.
func load(t *doctree.Tree) (*openapi3.T, error) {
	data := t.JSON
	if data == nil {
		var err error
		if data, err = json.Marshal(t.Root); err != nil {
			return nil, err
		}
	}
	doc := &openapi3.T{}
	if err := json.Unmarshal(data, doc); err != nil {
		return nil, err
	}
	if err := newLoader().ResolveRefsIn(doc, nil); err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	return doc, nil
}

// newLoader is a kin-openapi loader that cannot fetch: external refs are
// refused, and were one to get past that flag, the reader it would call
// refuses too.
func newLoader() *openapi3.Loader {
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	loader.ReadFromURIFunc = func(_ *openapi3.Loader, u *url.URL) ([]byte, error) {
		return nil, fmt.Errorf("%s: external references are not fetched", u)
	}
	return loader
}

// capProblems sorts problems by pointer (and message, so that the order
// never depends on a map's) and cuts the list at MaxProblems.
func capProblems(p []Problem) []Problem {
	sort.Slice(p, func(i, j int) bool {
		if p[i].Pointer != p[j].Pointer {
			return p[i].Pointer < p[j].Pointer
		}
		return p[i].Message < p[j].Message
	})
	if len(p) <= MaxProblems {
		return p
	}
	n := len(p) - MaxProblems
	return append(p[:MaxProblems:MaxProblems], Problem{Message: fmt.Sprintf("has %d more problems, not listed: only the first %d are", n, MaxProblems), Unlisted: n})
}
