// Package doctree reads a JSON or YAML document into the generic tree
// that encoding/json, JSON Schema validators and strictjson.Assign take
// (map[string]any, []any, string, json.Number, bool and nil), within
// bounds on its shape, naming every problem by JSON pointer. It is the
// one reader of user documents that may be YAML: OpenAPI descriptions
// and configuration documents.
package doctree

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v4"
)

// Bounds on a document's shape, checked while it is read, before any
// validator walks it: a few bytes of YAML aliases or of nesting can stand
// for far more work than their size. Real documents sit far below them:
// the largest shared OpenAPI test document (apideck vault, 170 KB) has
// 4 100 values, and 16 MiB of copies of its paths 414 000; a
// configuration of 10 000 routes some 200 000.
const (
	// MaxDepth is how deeply values may nest.
	MaxDepth = 128
	// MaxNodes is how many values (objects, arrays, scalars; keys not
	// counted) a document may hold, every expansion of a YAML alias
	// counted again: an alias bomb is refused as soon as its expansion
	// passes the bound, without being expanded. openapi.Parse costs up to
	// some 10 µs a value (kin-openapi's typed reading of many small
	// schemas), so this keeps its worst document near 10 s.
	MaxNodes = 1_000_000
	// MaxYAMLMarks bounds, before the YAML parser runs, the bytes that can
	// start a YAML value (`,[{:-?*` and newlines): a YAML value needs at
	// least half of one, so this caps the parser's nodes at about twice
	// as many. The parser costs some 200 bytes and half a microsecond
	// per node; without this cap 16 MiB of "- 0\n" would cost it 1 GB.
	// The apideck document has 11 000 such bytes in 170 KB, so a real
	// YAML description of 16 MiB passes.
	MaxYAMLMarks = 1_500_000
)

// Options say what Read records besides the tree.
type Options struct {
	// What names the document in the problem an empty one earns ("an
	// OpenAPI document"); empty means "a document".
	What string
	// Order lists the pointers of the objects whose keys Tree.Order keeps
	// in document order (maps forget it). An object reached through a
	// YAML alias is not recorded at the alias's pointer.
	Order []string
	// Positions asks for the place of every value in Tree.Pos. It costs a
	// map entry per value, which a caller that reports only pointers
	// should not pay.
	Positions bool
}

// Tree is a document as Read read it.
type Tree struct {
	Root any
	// JSON is the document as read, if it was JSON: the tree's own
	// encoding, which spares a caller a second json.Marshal of it (a
	// quarter of the cost of reading a 16 MiB document).
	JSON []byte
	// Order holds, for each pointer of Options.Order that names an
	// object, its keys in document order.
	Order map[string][]string
	// Pos holds, with Options.Positions, the place of every value by
	// pointer; a value inside the expansion of a YAML alias has none (the
	// alias itself has one).
	Pos map[string]Pos
}

// Pos is a place in a document: 1-based line and column, the column
// counted in characters.
type Pos struct {
	Line, Column int
}

// Problem is why a document could not be read: where (a JSON pointer,
// "" for the document as a whole), what, and for a syntax error the place
// in the text (zero if unknown).
type Problem struct {
	Pointer string
	Message string
	Pos     Pos
}

// Read reads data as JSON when its first significant byte is '{' or '[',
// else as YAML. YAML is a superset of JSON, but the YAML parser is
// superlinear on a large flow collection at the top level, which is what
// a JSON document is; encoding/json is linear. A problem ends the
// reading: Read returns one problem or a tree.
func Read(data []byte, opts Options) (*Tree, []Problem) {
	if !utf8.Valid(data) {
		return nil, []Problem{{Message: "is not valid UTF-8"}}
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		what := opts.What
		if what == "" {
			what = "a document"
		}
		return nil, []Problem{{Message: "is empty; " + what + " is required"}}
	}
	t := &Tree{}
	if opts.Positions {
		t.Pos = map[string]Pos{}
	}
	var err error
	if trimmed[0] == '{' || trimmed[0] == '[' {
		err = readJSON(t, data, opts)
	} else {
		err = readYAML(t, data, opts)
	}
	if err != nil {
		var b *errBound
		errors.As(err, &b)
		return nil, []Problem{b.Problem}
	}
	return t, nil
}

// EscapeToken escapes a key as a JSON pointer's reference token (RFC
// 6901: ~ as ~0, / as ~1).
func EscapeToken(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// UnescapeToken undoes EscapeToken.
func UnescapeToken(s string) string {
	if !strings.Contains(s, "~") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
}

// errBound ends a read with its one problem.
type errBound struct{ Problem }

func (e *errBound) Error() string { return e.Message }

func tooDeep(ptr string, at Pos) *errBound {
	return &errBound{Problem{Pointer: ptr, Message: fmt.Sprintf("nests deeper than %d levels", MaxDepth), Pos: at}}
}

func tooMany(ptr string, at Pos) *errBound {
	return &errBound{Problem{Pointer: ptr, Message: fmt.Sprintf("makes the document hold more than %d values (YAML aliases counted at each use)", MaxNodes), Pos: at}}
}

// jsonReader builds a tree from encoding/json's tokens, counting values
// and depth as it goes.
type jsonReader struct {
	dec   *json.Decoder
	data  []byte
	nodes int
	t     *Tree
	opts  Options
	// at is where positions were last counted to, so that converting
	// offsets to lines and columns costs one pass over the document
	// however long its lines are: offsets only grow.
	at   int
	line int
	col  int
}

func readJSON(t *Tree, data []byte, opts Options) error {
	r := &jsonReader{dec: json.NewDecoder(bytes.NewReader(data)), data: data, t: t, opts: opts, line: 1, col: 1}
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
			return err
		}
		return &errBound{r.syntax(err)}
	}
	t.Root, t.JSON = v, data
	return nil
}

// syntax says where a JSON document stopped making sense.
func (r *jsonReader) syntax(err error) Problem {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		pos := r.pos(min(int(se.Offset), len(r.data)))
		return Problem{Message: fmt.Sprintf("is not valid JSON: %s (line %d)", se.Error(), pos.Line), Pos: pos}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return Problem{Message: "is not valid JSON: the document ends early", Pos: r.pos(len(r.data))}
	}
	return Problem{Message: "is not valid JSON: " + err.Error(), Pos: r.here()}
}

// here is the place of the decoder's last token's end.
func (r *jsonReader) here() Pos { return r.pos(int(r.dec.InputOffset())) }

// pos converts a byte offset, no smaller than the last one converted, to
// a line and column.
func (r *jsonReader) pos(off int) Pos {
	if off < r.at { // only a syntax error can go back; count again
		r.at, r.line, r.col = 0, 1, 1
	}
	for r.at < off {
		c, size := utf8.DecodeRune(r.data[r.at:])
		r.at += size
		if c == '\n' {
			r.line, r.col = r.line+1, 1
		} else {
			r.col++
		}
	}
	return Pos{r.line, r.col}
}

func (r *jsonReader) value(ptr string, depth int) (any, error) {
	if r.t.Pos != nil {
		// Between the last token and this value there is only white
		// space and the ':' or ',' that separates them.
		start := int(r.dec.InputOffset())
		for start < len(r.data) && strings.IndexByte(" \t\r\n:,", r.data[start]) >= 0 {
			start++
		}
		r.t.Pos[ptr] = r.pos(start)
	}
	tok, err := r.dec.Token()
	if err != nil {
		return nil, err
	}
	return r.from(tok, ptr, depth)
}

func (r *jsonReader) from(tok json.Token, ptr string, depth int) (any, error) {
	r.nodes++
	if r.nodes > MaxNodes {
		return nil, tooMany(ptr, r.here())
	}
	switch tok := tok.(type) {
	case json.Delim:
		if depth >= MaxDepth {
			return nil, tooDeep(ptr, r.here())
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
		ordered := slices.Contains(r.opts.Order, ptr)
		for r.dec.More() {
			kt, err := r.dec.Token()
			if err != nil {
				return nil, err
			}
			k := kt.(string) // the decoder yields only string keys
			kp := ptr + "/" + EscapeToken(k)
			if _, dup := m[k]; dup {
				return nil, &errBound{Problem{Pointer: kp, Message: "is a duplicate key", Pos: r.here()}}
			}
			v, err := r.value(kp, depth+1)
			if err != nil {
				return nil, err
			}
			m[k] = v
			if ordered {
				r.order(ptr, k)
			}
		}
		_, err := r.dec.Token()
		return m, err
	default:
		return tok, nil // string, json.Number, bool or nil
	}
}

func (r *jsonReader) order(ptr, k string) {
	if r.t.Order == nil {
		r.t.Order = map[string][]string{}
	}
	r.t.Order[ptr] = append(r.t.Order[ptr], k)
}

// yamlReader builds a tree from the YAML parser's nodes. Aliases are
// converted once per anchor and shared, but charged at every use.
type yamlReader struct {
	nodes   int
	anchors map[*yaml.Node]anchored
	t       *Tree
	opts    Options
}

type anchored struct {
	v     any
	nodes int
	done  bool // false while the anchor's own value is being read
}

func readYAML(t *Tree, data []byte, opts Options) error {
	marks := 0
	for _, c := range data {
		switch c {
		case ',', '[', '{', ':', '-', '?', '*', '\n':
			marks++
		}
	}
	if marks > MaxYAMLMarks {
		return &errBound{Problem{Message: fmt.Sprintf("is too large a YAML document: more than %d of the bytes that start a value (,[{:-?* and line ends); send large documents as JSON", MaxYAMLMarks)}}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		p := Problem{Message: "is not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
		var le *yaml.LoadError
		if errors.As(err, &le) {
			p.Pos = Pos{le.Mark.Line, le.Mark.Column}
		}
		return &errBound{p}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		return &errBound{Problem{Message: "holds more than one YAML document", Pos: Pos{extra.Line, extra.Column}}}
	}
	r := &yamlReader{anchors: map[*yaml.Node]anchored{}, t: t, opts: opts}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	v, err := r.node(root, "", 0)
	if err != nil {
		return err
	}
	t.Root = v
	return nil
}

// fail is a problem at n.
func fail(n *yaml.Node, ptr, msg string) *errBound {
	return &errBound{Problem{Pointer: ptr, Message: msg, Pos: Pos{n.Line, n.Column}}}
}

func (r *yamlReader) node(n *yaml.Node, ptr string, depth int) (any, error) {
	if r.t.Pos != nil {
		r.t.Pos[ptr] = Pos{n.Line, n.Column}
	}
	if n.Kind == yaml.AliasNode {
		a, ok := r.anchors[n.Alias]
		if !ok {
			// An alias to an anchor read later cannot happen in one
			// document; read it now so that it is still charged.
			return r.anchor(n.Alias, ptr, depth)
		}
		if !a.done {
			return nil, fail(n, ptr, "is a YAML alias to a value that contains it")
		}
		r.nodes += a.nodes
		if r.nodes > MaxNodes {
			return nil, tooMany(ptr, Pos{n.Line, n.Column})
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
	at := Pos{n.Line, n.Column}
	if r.nodes > MaxNodes {
		return nil, tooMany(ptr, at)
	}
	switch n.Kind {
	case yaml.ScalarNode:
		return scalar(n, ptr)
	case yaml.SequenceNode:
		if depth >= MaxDepth {
			return nil, tooDeep(ptr, at)
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
			return nil, tooDeep(ptr, at)
		}
		m := make(map[string]any, len(n.Content)/2)
		ordered := slices.Contains(r.opts.Order, ptr)
		for i := 0; i+1 < len(n.Content); i += 2 {
			kn := n.Content[i]
			if kn.Kind == yaml.AliasNode {
				kn = kn.Alias
			}
			if kn.Kind != yaml.ScalarNode {
				return nil, fail(kn, ptr, fmt.Sprintf("has a key that is not a string (line %d)", kn.Line))
			}
			// A key is its text: an unquoted 200 under responses is the
			// string "200" in JSON terms.
			k := kn.Value
			kp := ptr + "/" + EscapeToken(k)
			if kn.Tag == "!!merge" {
				return nil, fail(kn, kp, "is a YAML merge key, which JSON does not have")
			}
			if _, dup := m[k]; dup {
				return nil, fail(kn, kp, "is a duplicate key")
			}
			v, err := r.node(n.Content[i+1], kp, depth+1)
			if err != nil {
				return nil, err
			}
			m[k] = v
			if ordered {
				if r.t.Order == nil {
					r.t.Order = map[string][]string{}
				}
				r.t.Order[ptr] = append(r.t.Order[ptr], k)
			}
		}
		return m, nil
	default:
		return nil, fail(n, ptr, "is not a YAML value")
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
				return nil, fail(n, ptr, "is "+n.Value+", which JSON cannot hold")
			}
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
		default:
			return json.Number(fmt.Sprint(f)), nil
		}
	default:
		return n.Value, nil
	}
}
