package console

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// TestPolicyEditorOffersEveryPolicyTypeFromTheAPIDescription: the
// console takes its policy types from the admin API's openapi.json at run
// time, so forgetting one is impossible. The test follows the very path
// pages.js reads in the document and wants every key of
// gatehouse.PolicyTypes there, and no list of its own in the console.
func TestPolicyEditorOffersEveryPolicyTypeFromTheAPIDescription(t *testing.T) {
	pages, err := os.ReadFile("static/js/pages.js")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`\(await loadAPIDoc\(\)\)\.([\w.]+);`).FindSubmatch(pages)
	if m == nil {
		t.Fatal("pages.js does not take the policy types from the API description (loadAPIDoc)")
	}
	raw, err := os.ReadFile("../admin/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var node any
	if err := json.Unmarshal(raw, &node); err != nil {
		t.Fatal(err)
	}
	for _, key := range strings.Split(string(m[1]), ".") {
		obj, ok := node.(map[string]any)
		if !ok {
			t.Fatalf("openapi.json has no %s (pages.js reads %s)", key, m[1])
		}
		node = obj[key]
	}
	list, _ := node.([]any)
	var offered []string
	for _, v := range list {
		s, _ := v.(string)
		offered = append(offered, s)
	}
	for name := range gatehouse.PolicyTypes {
		if !slices.Contains(offered, name) {
			t.Errorf("policy type %q is not in %s, which the console offers: %v", name, m[1], offered)
		}
	}
	for _, f := range []string{"static/js/kinds.js", "static/js/forms.js", "static/js/pages.js"} {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(src), "'rate-limit'") {
			t.Errorf("%s holds its own list of policy types", f)
		}
	}
}
