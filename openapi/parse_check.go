package openapi

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/doctree"
)

// Bounds on what a document may ask of the gateway. The validators of the
// data plane are built from it once per deployment: these keep that
// build, and the memory it holds, proportionate.
const (
	// MaxEnum is how many values an enum may list.
	MaxEnum = 10_000
	// MaxPattern is how long, in bytes, a pattern (or a patternProperties
	// key) may be. Go's regexp (RE2) runs in linear time, so a pattern
	// cannot hang a request; its length bounds the compiled program.
	MaxPattern = 1_000
	// MaxRefChain is how many $refs may lead to a $ref before reaching
	// a value that is not one.
	MaxRefChain = 32
	// MaxPaths and MaxOperations bound the routes a document describes;
	// the largest public descriptions (GitHub's, Stripe's) have about
	// a thousand operations.
	MaxPaths      = 10_000
	MaxOperations = 20_000
)

// version reads the openapi member: "3.0" or "3.1", or the problem.
func version(root any) (string, string, *Problem) {
	m, ok := root.(map[string]any)
	if !ok {
		return "", "", &Problem{Message: "must be an OpenAPI document: a JSON object or YAML mapping"}
	}
	v, ok := m["openapi"]
	if !ok {
		if s, ok := m["swagger"]; ok {
			return "", "", &Problem{Pointer: "/openapi", Message: fmt.Sprintf("is required: this is a Swagger %v document; only OpenAPI 3.0 and 3.1 are accepted (convert it first)", s)}
		}
		return "", "", &Problem{Pointer: "/openapi", Message: "is required: only OpenAPI 3.0 and 3.1 documents are accepted"}
	}
	s, ok := v.(string)
	if !ok {
		return "", "", &Problem{Pointer: "/openapi", Message: `must be a string such as "3.1.0" (quote it in YAML)`}
	}
	for _, minor := range []string{"3.0", "3.1"} {
		if rest, ok := strings.CutPrefix(s, minor+"."); ok && rest != "" && strings.Trim(rest, "0123456789") == "" {
			return s, minor, nil
		}
	}
	return "", "", &Problem{Pointer: "/openapi", Message: fmt.Sprintf("is %q: only OpenAPI 3.0.x and 3.1.x are accepted", s)}
}

// checker walks a tree for what the OAS schemas cannot say: $refs that
// leave the document or lead nowhere, and the bounds above.
type checker struct {
	root     any
	problems []Problem
	// chains memoises each $ref's verdict, so that a thousand refs to
	// the same chain follow it once.
	chains map[string]verdict
}

// dataKeywords hold values of the described API (examples, defaults,
// enums), where a "$ref" member is data, not a reference.
var dataKeywords = map[string]bool{"example": true, "default": true, "enum": true, "const": true, "value": true}

// nameMaps are the members whose object maps names chosen by the author
// to objects: under them, a key called "example" or "enum" is a name.
var nameMaps = map[string]bool{
	"properties": true, "patternProperties": true, "$defs": true, "definitions": true, "dependentSchemas": true,
	"paths": true, "webhooks": true, "callbacks": true, "responses": true, "content": true, "headers": true,
	"links": true, "examples": true, "encoding": true, "variables": true, "schemas": true, "parameters": true,
	"requestBodies": true, "securitySchemes": true, "pathItems": true, "scopes": true, "mapping": true,
}

func (c *checker) problem(ptr, msg string) {
	c.problems = append(c.problems, Problem{Pointer: ptr, Message: msg})
}

// walk visits v at ptr. names says v's keys are names (v is a name map);
// parent is the key v sits under.
func (c *checker) walk(v any, ptr, parent string, names bool) {
	switch v := v.(type) {
	case []any:
		if parent == "examples" {
			return // a Schema's examples: data
		}
		for i, x := range v {
			c.walk(x, ptr+"/"+strconv.Itoa(i), "", false)
		}
	case map[string]any:
		for k, x := range v {
			kp := ptr + "/" + doctree.EscapeToken(k)
			if names {
				if s, ok := x.(string); ok && k == "$ref" && parent != "scopes" && parent != "mapping" {
					// A name map holds objects, so this is a
					// Reference: a callback's, which is itself a
					// map of names (expressions).
					c.ref(kp, s)
					continue
				}
				// A callback maps names to maps of expressions.
				c.walk(x, kp, "", parent == "callbacks")
				continue
			}
			if strings.HasPrefix(k, "x-") {
				continue // extensions are the author's own data
			}
			switch k {
			case "$ref":
				if s, ok := x.(string); ok {
					c.ref(kp, s)
				}
				continue
			case "enum":
				if a, ok := x.([]any); ok && len(a) > MaxEnum {
					c.problem(kp, fmt.Sprintf("lists %d values; at most %d are accepted", len(a), MaxEnum))
				}
			case "pattern":
				if s, ok := x.(string); ok {
					c.pattern(kp, s)
				}
			case "mapping":
				if m, ok := x.(map[string]any); ok && parent == "discriminator" {
					c.mapping(kp, m)
				}
			case "patternProperties":
				if m, ok := x.(map[string]any); ok {
					for re := range m {
						c.pattern(kp+"/"+doctree.EscapeToken(re), re)
					}
				}
			}
			if dataKeywords[k] {
				continue
			}
			c.walk(x, kp, k, nameMaps[k])
		}
	}
}

// mapping checks a discriminator's mapping: each value names a schema,
// by reference or by its name under components, and must lead to one.
func (c *checker) mapping(ptr string, m map[string]any) {
	for name, v := range m {
		s, ok := v.(string)
		if !ok {
			continue // the schema says what is wrong with it
		}
		ref := s
		if !strings.ContainsAny(s, "#/.") {
			ref = "#/components/schemas/" + doctree.EscapeToken(s)
		}
		c.ref(ptr+"/"+doctree.EscapeToken(name), ref)
	}
}

func (c *checker) pattern(ptr, re string) {
	if len(re) > MaxPattern {
		c.problem(ptr, fmt.Sprintf("is %d bytes long; patterns of at most %d are accepted", len(re), MaxPattern))
		return
	}
	if _, err := regexp.Compile(re); err != nil {
		c.problem(ptr, "is not a regular expression Go's regexp (RE2) can run: "+strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
}

// ref checks the $ref at ptr: local, resolvable, and not the start of a
// chain of $refs that loops or passes MaxRefChain.
func (c *checker) ref(ptr, ref string) {
	if msg := c.chain(ref).message(ref); msg != "" {
		c.problem(ptr, msg)
	}
}

// verdict is what a $ref leads to: n $refs (itself included) to a value
// that is not one, or a problem: why, with the ref at fault, bad, if the
// problem is one ref's.
type verdict struct {
	n        int
	bad, why string
}

func (v verdict) message(ref string) string {
	if v.why == "" || v.bad == "" || v.bad == ref {
		return v.why
	}
	return fmt.Sprintf("leads to %s, which %s", v.bad, v.why)
}

// chain follows ref through the $refs it leads to. Each ref on the way
// keeps its verdict, so that a document's refs are followed once in all.
func (c *checker) chain(ref string) verdict {
	var path []string
	at := map[string]int{}
	var end verdict // the verdict of what the last ref of path leads to
	for cur := ref; ; {
		if v, ok := c.chains[cur]; ok {
			end = v
			break
		}
		if i, ok := at[cur]; ok {
			end = verdict{why: "leads into a reference loop: " + strings.Join(append(path[i:], cur), " → ")}
			break
		}
		if len(path) > MaxRefChain {
			end = verdict{why: fmt.Sprintf("starts a chain of more than %d $refs", MaxRefChain)}
			break
		}
		at[cur] = len(path)
		path = append(path, cur)
		target, msg := c.resolve(cur)
		if msg != "" {
			end = verdict{bad: cur, why: msg}
			break
		}
		m, _ := target.(map[string]any)
		next, ok := m["$ref"].(string)
		if !ok {
			break // a value: the chain ends well
		}
		cur = next
	}
	for i := len(path) - 1; i >= 0; i-- {
		if end.why == "" {
			end.n++
			if end.n > MaxRefChain {
				end.why = fmt.Sprintf("starts a chain of more than %d $refs", MaxRefChain)
			}
		}
		c.chains[path[i]] = end
	}
	return c.chains[ref]
}

// resolve finds the value a local reference names, or says why not.
func (c *checker) resolve(ref string) (any, string) {
	frag, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil, "is an external reference; external references are not fetched: define it under components and refer to it as #/components/..."
	}
	frag, err := url.PathUnescape(frag)
	if err != nil {
		return nil, "is not a valid URI fragment"
	}
	if frag != "" && frag[0] != '/' {
		return nil, "is not a JSON pointer (#/...); anchors are not supported"
	}
	v := c.root
	at := ""
	for frag != "" {
		var tok string
		tok, frag, _ = strings.Cut(frag[1:], "/")
		if frag != "" {
			frag = "/" + frag
		}
		at += "/" + tok
		tok = doctree.UnescapeToken(tok)
		switch x := v.(type) {
		case map[string]any:
			v, ok = x[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			ok = err == nil && i >= 0 && i < len(x) && (tok == "0" || tok[0] != '0')
			if ok {
				v = x[i]
			}
		default:
			ok = false
		}
		if !ok {
			return nil, fmt.Sprintf("points to nothing: the document has no %s", at)
		}
	}
	return v, ""
}

// unloadable names what valid documents may hold but kin-openapi, which
// the data plane's validators are built on, refuses to load (it would
// say so at "" only).
func unloadable(root any) []Problem {
	components, _ := root.(map[string]any)["components"].(map[string]any)
	if _, ok := components["pathItems"]; ok {
		return []Problem{{Pointer: "/components/pathItems", Message: "is not supported: define the path items under paths"}}
	}
	return nil
}

// operations lists the document's operations, paths in document order,
// methods in a fixed order, and checks the bounds on their numbers.
func operations(t *doctree.Tree) ([]Operation, []Problem) {
	paths, _ := t.Root.(map[string]any)["paths"].(map[string]any)
	if len(paths) > MaxPaths {
		return nil, []Problem{{Pointer: "/paths", Message: fmt.Sprintf("has %d paths; at most %d are accepted", len(paths), MaxPaths)}}
	}
	order := t.Order["/paths"]
	if len(order) != len(paths) {
		// /paths came from a YAML alias: its order is that of its
		// anchor, not recorded; sorted is still deterministic.
		order = slices.Sorted(maps.Keys(paths))
	}
	var ops []Operation
	var problems []Problem
	ids := map[string]Operation{}
	for _, path := range order {
		item, _ := paths[path].(map[string]any)
		for _, method := range methodOrder {
			op, ok := item[strings.ToLower(method)].(map[string]any)
			if !ok {
				continue
			}
			o := Operation{Method: method, Path: path}
			o.OperationID, _ = op["operationId"].(string)
			ops = append(ops, o)
			if o.OperationID == "" {
				continue
			}
			// Route import names routes by operationId: two
			// operations with one id would be one route.
			if first, dup := ids[o.OperationID]; dup {
				problems = append(problems, Problem{
					Pointer: o.Pointer() + "/operationId",
					Message: fmt.Sprintf("is %q, already the operationId of %s %s", o.OperationID, first.Method, first.Path),
				})
				continue
			}
			ids[o.OperationID] = o
		}
	}
	if len(ops) > MaxOperations {
		return nil, []Problem{{Pointer: "/paths", Message: fmt.Sprintf("declares %d operations; at most %d are accepted", len(ops), MaxOperations)}}
	}
	return ops, problems
}

// methodOrder is the order of an operation's methods within a path.
var methodOrder = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"}
