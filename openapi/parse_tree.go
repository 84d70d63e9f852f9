package openapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v4"
)

// Bounds on a document's shape, checked while it is read, before any
// validator walks it: Parse runs on a write of up to 16 MiB, and a few
// bytes of YAML aliases or of nesting can stand for far more work than
// their size. Real descriptions sit far below them: the largest shared
// test document (apideck vault, 170 KB) has 4 100 values, and 16 MiB of
// copies of its paths 414 000.
const (
	// MaxDepth is how deeply values may nest.
	MaxDepth = 128
	// MaxNodes is how many values (objects, arrays, scalars; keys not
	// counted) a document may hold, every expansion of a YAML alias
	// counted again: an alias bomb is refused as soon as its expansion
	// passes the bound, without being expanded. Parse costs up to some
	// 10 µs a value (kin-openapi's typed reading of many small schemas),
	// so this keeps the worst document near 10 s.
	MaxNodes = 1_000_000
	// maxYAMLMarks bounds, before the YAML parser runs, the bytes that can
	// start a YAML value (`,[{:-?*` and newlines): a YAML value needs at
	// least half of one, so this caps the parser's nodes at about twice
	// as many. The parser costs some 200 bytes and half a microsecond
	// per node; without this cap 16 MiB of "- 0\n" would cost it 1 GB.
	// The apideck document has 11 000 such bytes in 170 KB, so a real
	// YAML description of 16 MiB passes.
	maxYAMLMarks = 1_500_000
)

// tree is a document read into the generic form the JSON Schema
// validator and the JSON encoder both take: map[string]any, []any,
// string, json.Number, bool and nil.
type tree struct {
	root any
	// pathOrder is the keys of /paths in document order (maps forget it).
	pathOrder []string
	// json is the document as read, if it was JSON: the tree's own
	// encoding, without a second json.Marshal of it (a quarter of the
	// cost of a 16 MiB document).
	json []byte
}

// readTree reads data as JSON when its first significant byte is '{' or
// '[', else as YAML. YAML is a superset of JSON, but the YAML parser is
// superlinear on a large flow collection at the top level, which is what
// a JSON document is; encoding/json is linear.
func readTree(data []byte) (*tree, []Problem) {
	if !utf8.Valid(data) {
		return nil, []Problem{{Message: "is not valid UTF-8"}}
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, []Problem{{Message: "is empty; an OpenAPI document is required"}}
	}
	if trimmed[0] == '{' || trimmed[0] == '[' {
		return readJSON(data)
	}
	return readYAML(data)
}

// errBound ends a read that passed one of the bounds above.
type errBound struct{ Problem }

func (e *errBound) Error() string { return e.Message }

func tooDeep(ptr string) *errBound {
	return &errBound{Problem{Pointer: ptr, Message: fmt.Sprintf("nests deeper than %d levels", MaxDepth)}}
}

func tooMany(ptr string) *errBound {
	return &errBound{Problem{Pointer: ptr, Message: fmt.Sprintf("makes the document hold more than %d values (YAML aliases counted at each use)", MaxNodes)}}
}

// jsonReader builds a tree from encoding/json's tokens, counting values
// and depth as it goes and keeping the order of /paths.
type jsonReader struct {
	dec   *json.Decoder
	nodes int
	t     tree
}

func readJSON(data []byte) (*tree, []Problem) {
	r := &jsonReader{dec: json.NewDecoder(bytes.NewReader(data))}
	r.dec.UseNumber()
	v, err := r.value("", 0)
	if err == nil {
		if _, e := r.dec.Token(); e != io.EOF {
			err = errors.New("has data after the JSON document")
		}
	}
	if err != nil {
		var b *errBound
		if errors.As(err, &b) {
			return nil, []Problem{b.Problem}
		}
		return nil, []Problem{{Message: jsonSyntax(err, data)}}
	}
	r.t.root, r.t.json = v, data
	return &r.t, nil
}

// jsonSyntax says where a JSON document stopped making sense.
func jsonSyntax(err error, data []byte) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n"))
		return fmt.Sprintf("is not valid JSON: %s (line %d)", se.Error(), line)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "is not valid JSON: the document ends early"
	}
	return "is not valid JSON: " + err.Error()
}

func (r *jsonReader) value(ptr string, depth int) (any, error) {
	tok, err := r.dec.Token()
	if err != nil {
		return nil, err
	}
	return r.from(tok, ptr, depth)
}

func (r *jsonReader) from(tok json.Token, ptr string, depth int) (any, error) {
	r.nodes++
	if r.nodes > MaxNodes {
		return nil, tooMany(ptr)
	}
	switch tok := tok.(type) {
	case json.Delim:
		if depth >= MaxDepth {
			return nil, tooDeep(ptr)
		}
		if tok == '[' {
			a := []any{}
			for r.dec.More() {
				v, err := r.value(ptr+"/"+strconv.Itoa(len(a)), depth+1)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := r.dec.Token()
			return a, err
		}
		m := map[string]any{}
		for r.dec.More() {
			kt, err := r.dec.Token()
			if err != nil {
				return nil, err
			}
			k := kt.(string) // the decoder yields only string keys
			kp := ptr + "/" + escapePointer(k)
			if _, dup := m[k]; dup {
				return nil, &errBound{Problem{Pointer: kp, Message: "is a duplicate key"}}
			}
			v, err := r.value(kp, depth+1)
			if err != nil {
				return nil, err
			}
			m[k] = v
			if ptr == "/paths" {
				r.t.pathOrder = append(r.t.pathOrder, k)
			}
		}
		_, err := r.dec.Token()
		return m, err
	default:
		return tok, nil // string, json.Number, bool or nil
	}
}

// yamlReader builds a tree from the YAML parser's nodes. Aliases are
// converted once per anchor and shared, but charged at every use.
type yamlReader struct {
	nodes   int
	anchors map[*yaml.Node]anchored
	t       tree
}

type anchored struct {
	v     any
	nodes int
	done  bool // false while the anchor's own value is being read
}

func readYAML(data []byte) (*tree, []Problem) {
	marks := 0
	for _, c := range data {
		switch c {
		case ',', '[', '{', ':', '-', '?', '*', '\n':
			marks++
		}
	}
	if marks > maxYAMLMarks {
		return nil, []Problem{{Message: fmt.Sprintf("is too large a YAML document: more than %d of the bytes that start a value (,[{:-?* and line ends); send large documents as JSON", maxYAMLMarks)}}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, []Problem{{Message: "is not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		return nil, []Problem{{Message: "holds more than one YAML document"}}
	}
	r := &yamlReader{anchors: map[*yaml.Node]anchored{}}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	v, err := r.node(root, "", 0)
	if err != nil {
		var b *errBound
		errors.As(err, &b)
		return nil, []Problem{b.Problem}
	}
	r.t.root = v
	return &r.t, nil
}

func (r *yamlReader) node(n *yaml.Node, ptr string, depth int) (any, error) {
	if n.Kind == yaml.AliasNode {
		a, ok := r.anchors[n.Alias]
		if !ok {
			// An alias to an anchor read later cannot happen in one
			// document; read it now so that it is still charged.
			v, err := r.anchor(n.Alias, ptr, depth)
			return v, err
		}
		if !a.done {
			return nil, &errBound{Problem{Pointer: ptr, Message: "is a YAML alias to a value that contains it"}}
		}
		r.nodes += a.nodes
		if r.nodes > MaxNodes {
			return nil, tooMany(ptr)
		}
		return a.v, nil
	}
	if n.Anchor != "" {
		return r.anchor(n, ptr, depth)
	}
	return r.plain(n, ptr, depth)
}

func (r *yamlReader) anchor(n *yaml.Node, ptr string, depth int) (any, error) {
	r.anchors[n] = anchored{}
	before := r.nodes
	v, err := r.plain(n, ptr, depth)
	if err != nil {
		return nil, err
	}
	r.anchors[n] = anchored{v: v, nodes: r.nodes - before, done: true}
	return v, nil
}

func (r *yamlReader) plain(n *yaml.Node, ptr string, depth int) (any, error) {
	r.nodes++
	if r.nodes > MaxNodes {
		return nil, tooMany(ptr)
	}
	switch n.Kind {
	case yaml.ScalarNode:
		return scalar(n, ptr)
	case yaml.SequenceNode:
		if depth >= MaxDepth {
			return nil, tooDeep(ptr)
		}
		a := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			v, err := r.node(c, ptr+"/"+strconv.Itoa(i), depth+1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		return a, nil
	case yaml.MappingNode:
		if depth >= MaxDepth {
			return nil, tooDeep(ptr)
		}
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			kn := n.Content[i]
			if kn.Kind == yaml.AliasNode {
				kn = kn.Alias
			}
			if kn.Kind != yaml.ScalarNode {
				return nil, &errBound{Problem{Pointer: ptr, Message: fmt.Sprintf("has a key that is not a string (line %d)", kn.Line)}}
			}
			// A key is its text: an unquoted 200 under responses is the
			// string "200" in JSON terms.
			k := kn.Value
			kp := ptr + "/" + escapePointer(k)
			if kn.Tag == "!!merge" {
				return nil, &errBound{Problem{Pointer: kp, Message: "is a YAML merge key, which OpenAPI (JSON) does not have"}}
			}
			if _, dup := m[k]; dup {
				return nil, &errBound{Problem{Pointer: kp, Message: "is a duplicate key"}}
			}
			v, err := r.node(n.Content[i+1], kp, depth+1)
			if err != nil {
				return nil, err
			}
			m[k] = v
			if ptr == "/paths" {
				r.t.pathOrder = append(r.t.pathOrder, k)
			}
		}
		return m, nil
	default:
		return nil, &errBound{Problem{Pointer: ptr, Message: "is not a YAML value"}}
	}
}

// scalar gives a YAML scalar its JSON value: null, bool, number or
// string. Any other tag (a timestamp, binary) keeps its text, as a JSON
// reading of the same document would.
func scalar(n *yaml.Node, ptr string) (any, error) {
	switch n.ShortTag() {
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return n.Value, nil
		}
		return b, nil
	case "!!int", "!!float":
		if json.Valid([]byte(n.Value)) {
			return json.Number(n.Value), nil
		}
		// YAML spellings JSON lacks (0x1F, 1_000, .5, +1): their value.
		var f any
		if err := n.Decode(&f); err != nil {
			return n.Value, nil
		}
		switch f := f.(type) {
		case float64:
			if math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, &errBound{Problem{Pointer: ptr, Message: "is " + n.Value + ", which JSON cannot hold"}}
			}
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
		default:
			return json.Number(fmt.Sprint(f)), nil
		}
	default:
		return n.Value, nil
	}
}

// unescapePointer undoes escapePointer.
func unescapePointer(s string) string {
	if !strings.Contains(s, "~") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
}
