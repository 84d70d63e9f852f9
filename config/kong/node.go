package kong

import (
	"fmt"
	"math"
	"strconv"

	"go.yaml.in/yaml/v4"
)

// maxVisits bounds the nodes a conversion reads. YAML aliases let a small
// file name one entity many times over (a service list of aliases to
// route lists of aliases ...), so the bound is on what is read, not on
// the size of the input.
const maxVisits = 1_000_000

// errTooLarge stops a conversion whose aliases expand past maxVisits.
type errTooLarge struct{}

func (errTooLarge) Error() string {
	return fmt.Sprintf("the file names more than %d values (through YAML aliases)", maxVisits)
}

// deref follows aliases and charges the visit.
func (c *conv) deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	c.visits++
	if c.visits > maxVisits {
		panic(errTooLarge{})
	}
	return n
}

// field is one member of a mapping, with its key's node for positions.
type field struct {
	key   string
	keyN  *yaml.Node
	value *yaml.Node
}

// fields returns a mapping's members in order; nil if n is not a mapping.
func (c *conv) fields(n *yaml.Node) []field {
	n = c.deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	out := make([]field, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := c.deref(n.Content[i])
		if k.Kind != yaml.ScalarNode {
			continue
		}
		out = append(out, field{key: k.Value, keyN: k, value: n.Content[i+1]})
	}
	return out
}

// obj is a mapping read into a map, keeping each member's node.
type obj struct {
	node *yaml.Node
	m    map[string]field
	keys []string
}

func (c *conv) object(n *yaml.Node) *obj {
	n = c.deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	o := &obj{node: n, m: map[string]field{}}
	for _, f := range c.fields(n) {
		if _, dup := o.m[f.key]; !dup {
			o.keys = append(o.keys, f.key)
		}
		o.m[f.key] = f
	}
	return o
}

// has reports whether the member is present and not null.
func (o *obj) has(key string) bool {
	f, ok := o.m[key]
	return ok && !isNull(f.value)
}

func isNull(n *yaml.Node) bool {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// get returns the member's value node, or nil.
func (o *obj) get(key string) *yaml.Node {
	if f, ok := o.m[key]; ok && !isNull(f.value) {
		return f.value
	}
	return nil
}

// str returns a string member; ok is false if it is absent or not a
// scalar. Numbers are read as their text (a name: 123).
func (c *conv) str(o *obj, key string) (string, bool) {
	n := c.deref(o.get(key))
	if n == nil || n.Kind != yaml.ScalarNode {
		return "", false
	}
	return n.Value, true
}

func (c *conv) boolean(o *obj, key string, def bool) bool {
	n := c.deref(o.get(key))
	if n == nil || n.Kind != yaml.ScalarNode {
		return def
	}
	var b bool
	if n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		return def
	}
	return b
}

// number returns a numeric member; ok is false if absent or not a number.
func (c *conv) number(o *obj, key string) (float64, bool) {
	n := c.deref(o.get(key))
	if n == nil || n.Kind != yaml.ScalarNode {
		return 0, false
	}
	f, err := strconv.ParseFloat(n.Value, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// integer returns an integral numeric member within int range.
func (c *conv) integer(o *obj, key string) (int, bool) {
	f, ok := c.number(o, key)
	if !ok || f != math.Trunc(f) || f > math.MaxInt32*1024 || f < -math.MaxInt32*1024 {
		return 0, false
	}
	return int(f), true
}

// strs returns a list of strings, skipping entries that are not scalars.
func (c *conv) strs(o *obj, key string) []string {
	var out []string
	for _, e := range c.items(o.get(key)) {
		if e = c.deref(e); e.Kind == yaml.ScalarNode && e.ShortTag() != "!!null" {
			out = append(out, e.Value)
		}
	}
	return out
}

// items returns a sequence's entries; nil if n is not a sequence.
func (c *conv) items(n *yaml.Node) []*yaml.Node {
	n = c.deref(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	return n.Content
}
