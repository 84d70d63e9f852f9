package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v4"
)

// Encode writes a document as YAML (asYAML) or indented JSON, members in
// the order of the Go types, so that a dump reads as the reference does,
// and without the members the server sets (version, created_at,
// updated_at) and a credential's implied consumer_id.
func Encode(doc *Document, asYAML bool) ([]byte, error) {
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	// The tree is built from the JSON, whose members come in the types'
	// order (a map would sort them) and whose names are the json tags.
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	node, err := yamlNode(dec)
	if err != nil {
		return nil, err
	}
	for _, kind := range entries(node) {
		for _, e := range kind.Content {
			dropMembers(e, serverSet)
			if creds := member(e, "credentials"); creds != nil {
				for _, c := range creds.Content {
					dropMembers(c, append(serverSet, "consumer_id"))
				}
			}
		}
	}
	if !asYAML {
		var out bytes.Buffer
		writeJSON(&out, node, "")
		out.WriteByte('\n')
		return out.Bytes(), nil
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(node); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// yamlNode reads one JSON value from dec as a YAML node.
func yamlNode(dec *json.Decoder) (*yaml.Node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		if t == '[' {
			n = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		}
		for dec.More() {
			if n.Kind == yaml.MappingNode {
				key, err := dec.Token()
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key.(string)})
			}
			child, err := yamlNode(dec)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, child)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
		if len(n.Content) == 0 {
			n.Style = yaml.FlowStyle
		}
		return n, nil
	case string:
		n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: t}
		// A document's text reads best as a block, as it was written.
		if strings.Contains(t, "\n") {
			n.Style = yaml.LiteralStyle
		}
		return n, nil
	case json.Number:
		tag := "!!int"
		if strings.ContainsAny(t.String(), ".eE") {
			tag = "!!float"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: t.String()}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fmt.Sprint(t)}, nil
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	}
	return nil, fmt.Errorf("unexpected JSON token %v", tok)
}

// serverSet are the members of an entry the server sets.
var serverSet = []string{"version", "created_at", "updated_at"}

// entries are the document's lists of entries, one per kind.
func entries(doc *yaml.Node) []*yaml.Node {
	var out []*yaml.Node
	for i := 1; i < len(doc.Content); i += 2 {
		if doc.Content[i].Kind == yaml.SequenceNode {
			out = append(out, doc.Content[i])
		}
	}
	return out
}

// member is the value of a mapping's member, nil if absent.
func member(m *yaml.Node, name string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == name {
			return m.Content[i+1]
		}
	}
	return nil
}

// dropMembers removes the named members of a mapping.
func dropMembers(m *yaml.Node, names []string) {
	var kept []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		if !slices.Contains(names, m.Content[i].Value) {
			kept = append(kept, m.Content[i], m.Content[i+1])
		}
	}
	m.Content = kept
}

// writeJSON writes a tree made by yamlNode as indented JSON.
func writeJSON(b *bytes.Buffer, n *yaml.Node, indent string) {
	switch n.Kind {
	case yaml.MappingNode, yaml.SequenceNode:
		open, close := "{", "}"
		if n.Kind == yaml.SequenceNode {
			open, close = "[", "]"
		}
		if len(n.Content) == 0 {
			b.WriteString(open + close)
			return
		}
		b.WriteString(open)
		inner := indent + "  "
		step := 1
		if n.Kind == yaml.MappingNode {
			step = 2
		}
		for i := 0; i < len(n.Content); i += step {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("\n" + inner)
			if step == 2 {
				writeScalar(b, n.Content[i])
				b.WriteString(": ")
				writeJSON(b, n.Content[i+1], inner)
			} else {
				writeJSON(b, n.Content[i], inner)
			}
		}
		b.WriteString("\n" + indent + close)
	default:
		writeScalar(b, n)
	}
}

func writeScalar(b *bytes.Buffer, n *yaml.Node) {
	if n.Tag == "!!str" {
		s, _ := json.Marshal(n.Value)
		b.Write(s)
		return
	}
	b.WriteString(n.Value)
}
