package schemaerr

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// validate validates the JSON doc against the JSON schema.
func validate(t *testing.T, schema, doc string) error {
	t.Helper()
	s, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("s.json", s); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("s.json")
	if err != nil {
		t.Fatal(err)
	}
	d, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	err = sch.Validate(d)
	if err == nil {
		t.Fatalf("%s is valid; want violations", doc)
	}
	return err
}

func slashed(loc []string) string { return "/" + strings.Join(loc, "/") }

func TestLeavesAreSortedByLocationIndexesByNumberAndSaidOnce(t *testing.T) {
	// Two identical anyOf branches say the same thing at "/b"; the
	// array's bad items are at 10 and 2 (10 before 2 as text).
	err := validate(t, `{"type":"object","properties":{
		"b":{"anyOf":[{"type":"integer"},{"type":"integer"}]},
		"a":{"type":"array","items":{"type":"integer"}}}}`,
		`{"b":"x","a":[0,1,"two",3,4,5,6,7,8,9,"ten"]}`)
	got, ok := Leaves(err, slashed)
	if !ok {
		t.Fatal("not a validation error")
	}
	var fields []string
	for _, v := range got {
		fields = append(fields, v.Field)
		if v.Message == "" {
			t.Errorf("%s: no message", v.Field)
		}
	}
	if want := "/a/2 /a/10 /b"; strings.Join(fields, " ") != want {
		t.Fatalf("fields %q; want %s (%+v)", fields, want, got)
	}
}

func TestLeafMessagesAreClippedAtARuneBoundary(t *testing.T) {
	long := strings.Repeat("é", 1000)
	err := validate(t, `{"type":"string","pattern":"^a+$"}`, `"`+long+`"`)
	got, _ := Leaves(err, slashed)
	if len(got) != 1 {
		t.Fatalf("got %+v; want one violation", got)
	}
	m := got[0].Message
	if len(m) > MaxMessage+len("…") || !strings.HasSuffix(m, "…") || !strings.Contains(m, "éé") || !utf8.ValidString(m) {
		t.Fatalf("message of %d bytes: %q", len(m), m)
	}
}

func TestLeavesOfAnErrorThatIsNotAValidationErrorAreNone(t *testing.T) {
	if got, ok := Leaves(errors.New("io"), slashed); ok || got != nil {
		t.Fatalf("got %+v, %v; want nothing, false", got, ok)
	}
}

func TestFirstLeavesKeepsTheFirstInOrderAndNamesOnlyThose(t *testing.T) {
	// 300 items each failing, and an object whose 300 properties fail in
	// the validator's map order.
	items := make([]string, 300)
	props := make([]string, 300)
	for i := range items {
		items[i] = "1"
		props[i] = fmt.Sprintf(`"p%03d": 1`, i)
	}
	err := validate(t, `{"properties": {"a": {"items": {"type": "string"}}, "o": {"additionalProperties": {"type": "string"}}}}`,
		`{"a": [`+strings.Join(items, ",")+`], "o": {`+strings.Join(props, ",")+`}}`)
	want, _ := Leaves(err, slashed)
	for _, max := range []int{0, 1, 7, 100, len(want), len(want) + 5} {
		named := 0
		got, unlisted, ok := FirstLeaves(err, func(loc []string) string { named++; return slashed(loc) }, max)
		n := min(max, len(want))
		if !ok || len(got) != n || unlisted != len(want)-n {
			t.Fatalf("max %d: %d leaves, %d unlisted; want %d and %d", max, len(got), unlisted, n, len(want)-n)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("max %d: leaf %d is %v; want %v", max, i, got[i], want[i])
			}
		}
		// Only leaves that could be kept are named: at most the kept ones
		// and those displaced, never every leaf.
		if max < len(want) && named > 4*max+2 {
			t.Fatalf("max %d: named %d leaves of %d", max, named, len(want))
		}
	}
}
