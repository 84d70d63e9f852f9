package config

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/doctree"
	"github.com/gatehouse/gatehouse/internal/strictjson"
)

// Lists are the members of a document that hold resources, in the
// order of Document's fields.
var Lists = []string{"services", "routes", "consumers", "policies", "specs"}

// knownMembers is how a problem at the top level names what may be there.
const knownMembers = "a configuration document holds format_version, services, routes, consumers, policies and specs"

// Decode turns a tree (as Read or Load give it) into a Document: the
// members' types, and no member the types lack, with every problem named
// by JSON pointer and Code EINVALID. It judges structure only: whether
// the resources make sense is Check's. Each entry starts from the admin
// API's defaults for its kind (gatehouse.NewService, NewRoute, ...), so
// that a member a file leaves out means what it means in a POST. With
// problems, Decode returns no document.
func Decode(root any) (*Document, []Problem) {
	var c collector
	top := c.top(root)
	if len(c.problems) > 0 {
		return nil, c.done()
	}
	doc := &Document{FormatVersion: FormatVersion}
	doc.Services = decodeList(&c, top, "services", gatehouse.NewService)
	doc.Routes = decodeList(&c, top, "routes", gatehouse.NewRoute)
	doc.Consumers = decodeList(&c, top, "consumers", func() *Consumer {
		return &Consumer{Consumer: *gatehouse.NewConsumer()}
	})
	doc.Policies = decodeList(&c, top, "policies", gatehouse.NewPolicy)
	doc.Specs = decodeList(&c, top, "specs", func() *Spec { return &Spec{} })
	if len(c.problems) > 0 || c.omitted > 0 {
		return nil, c.done()
	}
	return doc, nil
}

// collector gathers problems up to strictjson.MaxErrors and counts the
// rest, as every gatehouse error list does.
type collector struct {
	problems []Problem
	omitted  int
}

func (c *collector) add(ptr, msg string) {
	if len(c.problems) >= strictjson.MaxErrors {
		c.omitted++
		return
	}
	c.problems = append(c.problems, Problem{Pointer: ptr, Message: msg, Code: gatehouse.EINVALID})
}

func (c *collector) done() []Problem {
	if c.omitted > 0 {
		c.problems = append(c.problems, Problem{Message: fmt.Sprintf("has %d more problems, not listed: only the first %d are", c.omitted, strictjson.MaxErrors), Code: gatehouse.EINVALID})
		c.omitted = 0
	}
	return c.problems
}

// top checks a document's top level: an object with format_version "1"
// and, besides it, only lists of resources (null counts as absent, as a
// YAML key whose entries are all commented out is null).
func (c *collector) top(root any) map[string]any {
	obj, ok := root.(map[string]any)
	if !ok {
		c.add("", "must be an object: "+knownMembers)
		return nil
	}
	switch v, ok := obj["format_version"]; {
	case !ok || v == nil:
		// Without it, what the rest is wrong about is beside the point.
		c.add("/format_version", fmt.Sprintf("is required (%q): without it this is not a gatehouse configuration document", FormatVersion))
		return nil
	case v != FormatVersion:
		c.add("/format_version", fmt.Sprintf("must be the string %q, the only version of this format (in YAML: format_version: %q)", FormatVersion, FormatVersion))
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		switch {
		case k == "format_version":
		case !slices.Contains(Lists, k):
			c.add("/"+doctree.EscapeToken(k), "is not a known member: "+knownMembers)
		default:
			if _, isList := obj[k].([]any); !isList && obj[k] != nil {
				c.add("/"+k, "must be an array")
			}
		}
	}
	return obj
}

// decodeList assigns each entry of a list to a fresh value.
func decodeList[T any](c *collector, top map[string]any, kind string, fresh func() *T) []*T {
	list, _ := top[kind].([]any)
	if list == nil {
		return nil
	}
	out := make([]*T, 0, len(list))
	for i, v := range list {
		ptr := "/" + kind + "/" + strconv.Itoa(i)
		if v == nil {
			c.add(ptr, "must not be null")
			continue
		}
		e := fresh()
		for _, fe := range strictjson.Assign(v, e) {
			if fe.Unlisted > 0 {
				c.omitted += fe.Unlisted
				continue
			}
			c.add(ptr+fieldPointer(v, fe.Field), fe.Message)
		}
		out = append(out, e)
	}
	return out
}

// fieldPointer turns a strictjson field path within tree ("body",
// "targets[1].weight") into a JSON pointer ("", "/targets/1/weight").
// A path cannot tell a key holding '.' or '[' from nesting, so the tree
// says which keys there are; where it cannot (a path the tree lacks),
// the path is split at every '.' and '['.
func fieldPointer(tree any, path string) string {
	if path == "body" {
		return ""
	}
	var b strings.Builder
	for path != "" {
		switch node := tree.(type) {
		case []any:
			end := strings.IndexByte(path, ']')
			if path[0] != '[' || end < 0 {
				return b.String() + naivePointer(path)
			}
			i, err := strconv.Atoi(path[1:end])
			if err != nil || i < 0 || i >= len(node) {
				return b.String() + naivePointer(path)
			}
			b.WriteString("/" + strconv.Itoa(i))
			tree, path = node[i], strings.TrimPrefix(path[end+1:], ".")
		case map[string]any:
			key, ok := memberOf(node, path)
			if !ok {
				return b.String() + naivePointer(path)
			}
			b.WriteString("/" + doctree.EscapeToken(key))
			tree = node[key]
			if key == "" {
				key = `""` // strictjson's spelling of an empty key
			}
			path = strings.TrimPrefix(path[len(key):], ".")
		default:
			return b.String() + naivePointer(path)
		}
	}
	return b.String()
}

// memberOf finds the key of obj that path starts with, the longest if
// several do.
func memberOf(obj map[string]any, path string) (string, bool) {
	best, found := "", false
	for k := range obj {
		name := k
		if name == "" {
			name = `""`
		}
		rest, ok := strings.CutPrefix(path, name)
		if ok && (rest == "" || rest[0] == '.' || rest[0] == '[') && (!found || len(k) > len(best)) {
			best, found = k, true
		}
	}
	return best, found
}

// naivePointer converts a path with no tree to say what its keys are.
func naivePointer(path string) string {
	var b strings.Builder
	for _, seg := range strings.FieldsFunc(path, func(r rune) bool { return r == '.' || r == '[' }) {
		b.WriteString("/" + doctree.EscapeToken(strings.TrimSuffix(seg, "]")))
	}
	return b.String()
}
