package config

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/strictjson"
)

// read is Read and Decode of one body, failing the test on a problem.
func read(t *testing.T, data string) *Document {
	t.Helper()
	src, problems := Read([]byte(data))
	if problems != nil {
		t.Fatalf("Read: got problems %v; want none", problems)
	}
	doc, problems := Decode(src.Root)
	if problems != nil {
		t.Fatalf("Decode: got problems %v; want none", problems)
	}
	return doc
}

func TestDecodeGivesEachEntryTheAdminAPIDefaults(t *testing.T) {
	data, err := os.ReadFile("testdata/gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := read(t, string(data))
	if doc.FormatVersion != "1" || len(doc.Services) != 2 || len(doc.Routes) != 2 || len(doc.Consumers) != 1 || len(doc.Policies) != 1 || len(doc.Specs) != 1 {
		t.Fatalf("got %+v; want 2 services, 2 routes, 1 consumer, 1 policy, 1 spec", doc)
	}
	orders := doc.Services[0]
	if orders.ID != "orders" || orders.URL != "http://orders.internal:8080" || !reflect.DeepEqual(orders.Tags, []string{"team-a"}) {
		t.Errorf("got service %+v; want orders as written", orders)
	}
	// What the file leaves out is what a POST would have left out.
	if def := gatehouse.NewService(); orders.ConnectTimeoutMS != def.ConnectTimeoutMS || orders.ReadTimeoutMS != def.ReadTimeoutMS || orders.Retries != def.Retries {
		t.Errorf("got timeouts %d/%d and retries %d; want NewService's defaults", orders.ConnectTimeoutMS, orders.ReadTimeoutMS, orders.Retries)
	}
	billing := doc.Services[1]
	if got := []int{billing.Targets[0].Weight, billing.Targets[1].Weight}; !reflect.DeepEqual(got, []int{gatehouse.DefaultWeight, 50}) {
		t.Errorf("got target weights %v; want the default and 50", got)
	}
	if billing.HealthCheck == nil || billing.HealthCheck.Path != "/healthz" || billing.HealthCheck.IntervalMS != 10_000 {
		t.Errorf("got health check %+v; want /healthz with the default interval", billing.HealthCheck)
	}
	if r := doc.Routes[1]; !r.StripPath || !reflect.DeepEqual(r.Upgrades, gatehouse.DefaultUpgrades) || r.Methods == nil {
		t.Errorf("got route %+v; want strip_path and NewRoute's defaults", r)
	}
	alice := doc.Consumers[0]
	if alice.Name != "alice" || len(alice.Credentials) != 1 || alice.Credentials[0].Type != gatehouse.CredentialKeyAuth || alice.Credentials[0].KeyHash == "" {
		t.Errorf("got consumer %+v; want alice with her key's hash", alice)
	}
	if p := doc.Policies[0]; p.Type != gatehouse.PolicyAuth || string(p.Config) != `{"key_auth":{}}` {
		t.Errorf("got policy %+v config %s; want auth with key_auth", p, p.Config)
	}
	// Read reads no document_file: that is Load's, on files.
	if s := doc.Specs[0]; s.DocumentFile != "orders-openapi.yaml" || s.Document != nil {
		t.Errorf("got spec %+v; want its document_file kept and no document", s)
	}
}

func TestReadGivesTheSameDocumentFromJSONAndYAML(t *testing.T) {
	data, err := os.ReadFile("testdata/gateway.json")
	if err != nil {
		t.Fatal(err)
	}
	fromJSON := read(t, string(data))
	fromYAML := read(t, `
format_version: "1"
services: [{id: orders, name: orders, url: "http://orders.internal:8080"}]
routes:
  - {id: orders-api, paths: [/orders], service_id: orders}
`)
	if !reflect.DeepEqual(fromJSON, fromYAML) {
		a, _ := json.Marshal(fromJSON)
		b, _ := json.Marshal(fromYAML)
		t.Errorf("JSON gave %s\nYAML gave %s", a, b)
	}
}

func TestReadRefusesWhatIsNotADocument(t *testing.T) {
	for _, tc := range []struct {
		desc, body string
		pointer    string
		place      bool // a syntax error knows its line
	}{
		{"empty", "\n", "", false},
		{"not JSON", `{"format_version": "1",}`, "", true},
		{"not YAML", "format_version: [\n", "", true},
		{"duplicate key", "format_version: '1'\nroutes: []\nroutes: []\n", "/routes", true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			src, problems := Read([]byte(tc.body))
			if src != nil || len(problems) != 1 {
				t.Fatalf("got %v, %v; want one problem", src, problems)
			}
			p := problems[0]
			if p.Pointer != tc.pointer || p.Code != gatehouse.EINVALID || (p.Pos != nil) != tc.place {
				t.Errorf("got %+v (place %v); want pointer %q, EINVALID, a place: %v", p, p.Pos, tc.pointer, tc.place)
			}
		})
	}
}

// decodeCase is a document and the pointers of the problems Decode
// finds in it.
type decodeCase struct {
	desc, doc string
	want      []string
}

// decodeCases are documents wrong in every way Decode sees, and the
// fuzzer's seeds.
func decodeCases() []decodeCase {
	return []decodeCase{
		{"not an object", `["routes"]`, []string{""}},
		{"no format_version", `{"routes": []}`, []string{"/format_version"}},
		{"another format_version", `{"format_version": "2"}`, []string{"/format_version"}},
		{"format_version as a number", "format_version: 1\n", []string{"/format_version"}},
		{"unknown members", `{"format_version": "1", "tokens": [], "x/y": 1}`, []string{"/tokens", "/x~1y"}},
		{"a list that is not one", `{"format_version": "1", "routes": {"id": "r"}}`, []string{"/routes"}},
		{"null lists are absent", `{"format_version": "1", "routes": null, "services": null}`, nil},
		{"a null entry", `{"format_version": "1", "routes": [{"id": "a"}, null]}`, []string{"/routes/1"}},
		{"an entry that is not an object", `{"format_version": "1", "services": ["orders"]}`, []string{"/services/0"}},
		{"unknown fields and wrong types", `{"format_version": "1", "routes": [
			{"id": "a"},
			{"id": "b", "pathz": ["/"], "strip_path": "yes", "paths": ["/", 2]}]}`,
			[]string{"/routes/1/paths/1", "/routes/1/pathz", "/routes/1/strip_path"}},
		{"nested values", `{"format_version": "1", "services": [{"id": "s", "targets": [{"url": "http://a"}, {"url": "http://b", "weight": "heavy"}], "health_check": {"pth": "/"}}]}`,
			[]string{"/services/0/health_check/pth", "/services/0/targets/1/weight"}},
		{"a consumer's credentials", `{"format_version": "1", "consumers": [{"id": "c", "credentials": [{"id": "k", "kye": "x"}]}]}`,
			[]string{"/consumers/0/credentials/0/kye"}},
		{"keys that look like paths", `{"format_version": "1", "routes": [{"id": "r", "a.b": 1, "c[0]": 2, "": 3, "~": 4}]}`,
			[]string{"/routes/0/", "/routes/0/a.b", "/routes/0/c[0]", "/routes/0/~0"}},
		{"a server-set time that is not one", `{"format_version": "1", "policies": [{"id": "p", "created_at": "yesterday"}]}`,
			[]string{"/policies/0/created_at"}},
	}
}

func TestDecodeNamesEachProblemByPointer(t *testing.T) {
	for _, tc := range decodeCases() {
		t.Run(tc.desc, func(t *testing.T) {
			src, problems := Read([]byte(tc.doc))
			if problems != nil {
				t.Fatalf("Read: %v", problems)
			}
			doc, problems := Decode(src.Root)
			var got []string
			for _, p := range problems {
				got = append(got, p.Pointer)
				if p.Code != gatehouse.EINVALID || p.Message == "" {
					t.Errorf("got problem %+v; want EINVALID with a message", p)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got pointers %q; want %q (%v)", got, tc.want, problems)
			}
			if (doc == nil) != (len(tc.want) > 0) {
				t.Errorf("got document %v; want one only without problems", doc)
			}
		})
	}
}

func TestDecodeListsAtMostMaxErrorsProblems(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"format_version": "1", "routes": [`)
	for i := range 150 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"id": "r%d", "bad": 1}`, i)
	}
	b.WriteString("]}")
	src, problems := Read([]byte(b.String()))
	if problems != nil {
		t.Fatal(problems)
	}
	_, problems = Decode(src.Root)
	if len(problems) != strictjson.MaxErrors+1 {
		t.Fatalf("got %d problems; want %d and one counting the rest", len(problems), strictjson.MaxErrors+1)
	}
	last := problems[len(problems)-1]
	if last.Pointer != "" || !strings.Contains(last.Message, "50 more") {
		t.Errorf("got last problem %+v; want one at the document counting 50 more", last)
	}
}

func TestFieldPointerFollowsTheTree(t *testing.T) {
	tree := map[string]any{
		"a.b": map[string]any{"c": []any{"x", map[string]any{"d": 1}}},
		"a":   map[string]any{"b": 1},
		"":    map[string]any{"e": 1},
	}
	for _, tc := range []struct{ path, want string }{
		{"body", ""},
		{"a.b.c[1].d", "/a.b/c/1/d"},
		{"a.b.c[0]", "/a.b/c/0"},
		{`"".e`, "//e"},
		{"missing.x[3]", "/missing/x/3"},
		{"a.b.c[9].d", "/a.b/c/9/d"},
	} {
		if got := fieldPointer(tree, tc.path); got != tc.want {
			t.Errorf("fieldPointer(%q) = %q; want %q", tc.path, got, tc.want)
		}
	}
}
