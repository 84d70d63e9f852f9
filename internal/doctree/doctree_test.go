package doctree

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestReadGivesTheTreeOfJSONAndYAMLAlike(t *testing.T) {
	want := map[string]any{"a": []any{json.Number("1"), "x", true, nil}, "b": map[string]any{"c": json.Number("2.5")}}
	for _, tc := range []struct {
		desc, doc string
		isJSON    bool
	}{
		{"JSON", `{"a": [1, "x", true, null], "b": {"c": 2.5}}`, true},
		{"YAML", "a: [1, x, true, null]\nb:\n  c: 2.5\n", false},
		{"YAML with a byte order mark", "\ufeffa: [1, x, true, ~]\nb: {c: 2.5}\n", false},
		{"YAML spellings JSON lacks", "a: [0x1, x, true, null]\nb: {c: +2.5}\n", false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			tree, problems := Read([]byte(tc.doc), Options{})
			if problems != nil {
				t.Fatalf("got problems %v; want none", problems)
			}
			if !reflect.DeepEqual(tree.Root, want) {
				t.Errorf("got %#v; want %#v", tree.Root, want)
			}
			if (tree.JSON != nil) != tc.isJSON {
				t.Errorf("got JSON %q; want it kept only for a JSON document", tree.JSON)
			}
			if tree.Pos != nil {
				t.Errorf("got positions %v without asking for them", tree.Pos)
			}
		})
	}
}

func TestReadPositionsEveryValue(t *testing.T) {
	for _, tc := range []struct {
		desc, doc string
		want      map[string]Pos
	}{
		{"JSON on several lines", "{\n  \"routes\": [\n    {\"id\": \"r1\", \"paths\": [\"/é\", \"/b\"]}\n  ],\n  \"n\": 1\n}\n", map[string]Pos{
			"":                  {1, 1},
			"/routes":           {2, 13},
			"/routes/0":         {3, 5},
			"/routes/0/id":      {3, 12},
			"/routes/0/paths":   {3, 27},
			"/routes/0/paths/0": {3, 28},
			"/routes/0/paths/1": {3, 34}, // "/é" is four bytes but three characters
			"/n":                {5, 8},
		}},
		{"YAML", "routes:\n  - id: r1\n    paths: [/a, /b]\nn: 1\n", map[string]Pos{
			"":                  {1, 1},
			"/routes":           {2, 3},
			"/routes/0":         {2, 5},
			"/routes/0/id":      {2, 9},
			"/routes/0/paths":   {3, 12},
			"/routes/0/paths/0": {3, 13},
			"/routes/0/paths/1": {3, 17},
			"/n":                {4, 4},
		}},
		{"YAML alias: the alias has a place, its expansion none", "a: &x {b: 1}\nc: *x\n", map[string]Pos{
			"": {1, 1}, "/a": {1, 4}, "/a/b": {1, 11}, "/c": {2, 4},
		}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			tree, problems := Read([]byte(tc.doc), Options{Positions: true})
			if problems != nil {
				t.Fatalf("got problems %v; want none", problems)
			}
			if !reflect.DeepEqual(tree.Pos, tc.want) {
				t.Errorf("got %v; want %v", tree.Pos, tc.want)
			}
		})
	}
}

func TestReadKeepsTheOrderOfTheObjectsAskedFor(t *testing.T) {
	for _, doc := range []string{
		`{"paths": {"/z": 1, "/a": 2, "/m": 3}, "other": {"y": 1, "x": 2}}`,
		"paths:\n  /z: 1\n  /a: 2\n  /m: 3\nother: {y: 1, x: 2}\n",
	} {
		tree, problems := Read([]byte(doc), Options{Order: []string{"/paths"}})
		if problems != nil {
			t.Fatalf("got problems %v; want none", problems)
		}
		want := map[string][]string{"/paths": {"/z", "/a", "/m"}}
		if !reflect.DeepEqual(tree.Order, want) {
			t.Errorf("%q: got order %v; want %v", doc, tree.Order, want)
		}
	}
}

func TestReadRefusesWithAPointerAndAPlace(t *testing.T) {
	bomb := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for c := 'b'; c <= 'k'; c++ {
		p := c - 1
		bomb += fmt.Sprintf("%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", c, c, p, p, p, p, p, p, p, p, p, p)
	}
	for _, tc := range []struct {
		desc, doc string
		want      Problem // Message: a part of it
	}{
		{"not UTF-8", "a: \xff", Problem{Message: "UTF-8"}},
		{"empty", " \n", Problem{Message: "is empty; a document is required"}},
		{"JSON syntax", "{\n  \"a\": 1,\n}", Problem{Message: "is not valid JSON", Pos: Pos{3, 1}}},
		{"JSON ends early", `{"a": [1`, Problem{Message: "ends early", Pos: Pos{1, 9}}},
		{"JSON data after the document", `{"a": 1} {}`, Problem{Message: "data after", Pos: Pos{1, 11}}},
		{"YAML syntax", "a: [1, 2\nb: 3\n", Problem{Message: "is not valid YAML", Pos: Pos{2, 2}}},
		{"two YAML documents", "a: 1\n---\nb: 2\n", Problem{Message: "more than one YAML document", Pos: Pos{2, 1}}},
		{"duplicate JSON key", `{"a": {"b": 1, "b": 2}}`, Problem{Pointer: "/a/b", Message: "duplicate key", Pos: Pos{1, 19}}},
		{"duplicate YAML key", "a:\n  b: 1\n  b: 2\n", Problem{Pointer: "/a/b", Message: "duplicate key", Pos: Pos{3, 3}}},
		{"YAML merge key", "a: &a {b: 1}\nc: {<<: *a}\n", Problem{Pointer: "/c/<<", Message: "merge key", Pos: Pos{2, 5}}},
		{"YAML key not a string", "? [a]\n: 1\n", Problem{Message: "not a string", Pos: Pos{1, 3}}},
		{"YAML infinity", "a: .inf\n", Problem{Pointer: "/a", Message: "JSON cannot hold", Pos: Pos{1, 4}}},
		{"YAML alias to itself", "a: &a [1, *a]\n", Problem{Pointer: "/a/1", Message: "contains it", Pos: Pos{1, 11}}},
		{"YAML alias bomb", bomb, Problem{Pointer: "/f/7", Message: fmt.Sprintf("more than %d values", MaxNodes), Pos: Pos{6, 36}}},
		{"JSON too deep", `{"a": ` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + "}", Problem{Pointer: "/a" + strings.Repeat("/0", MaxDepth-1), Message: "deeper than"}},
		{"YAML too deep", "a: " + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth), Problem{Pointer: "/a" + strings.Repeat("/0", MaxDepth-1), Message: "deeper than"}},
		{"too large a YAML document", "a: [" + strings.Repeat("1,", MaxYAMLMarks) + "1]\n", Problem{Message: "too large a YAML document"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			start := time.Now()
			tree, problems := Read([]byte(tc.doc), Options{Positions: true})
			if tree != nil || len(problems) != 1 {
				t.Fatalf("got tree %v and problems %v; want one problem", tree, problems)
			}
			p := problems[0]
			if p.Pointer != tc.want.Pointer || !strings.Contains(p.Message, tc.want.Message) {
				t.Errorf("got %q %q; want %q and a message with %q", p.Pointer, p.Message, tc.want.Pointer, tc.want.Message)
			}
			if tc.want.Pos != (Pos{}) && p.Pos != tc.want.Pos {
				t.Errorf("got place %v; want %v", p.Pos, tc.want.Pos)
			}
			// Bounds are checked while reading: an alias bomb is not
			// expanded, a deep document not walked.
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v to refuse", d)
			}
		})
	}
}

func TestEscapeTokenRoundTrips(t *testing.T) {
	for _, tc := range []struct{ key, token string }{
		{"plain", "plain"}, {"/a/b", "~1a~1b"}, {"~x", "~0x"}, {"~1", "~01"}, {"", ""},
	} {
		if got := EscapeToken(tc.key); got != tc.token {
			t.Errorf("EscapeToken(%q) = %q; want %q", tc.key, got, tc.token)
		}
		if got := UnescapeToken(tc.token); got != tc.key {
			t.Errorf("UnescapeToken(%q) = %q; want %q", tc.token, got, tc.key)
		}
	}
}
