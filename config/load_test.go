package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/strictjson"
)

// writeFiles writes name -> content under dir, making directories; a
// content starting with "-> " makes a symlink to the rest.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(content, "-> "); ok {
			err = os.Symlink(target, path)
		} else {
			err = os.WriteFile(path, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// load is Load and Decode, failing the test on a problem.
func load(t *testing.T, opts LoadOptions, paths ...string) (*Source, *Document) {
	t.Helper()
	src, problems := Load(paths, opts)
	if problems != nil {
		t.Fatalf("Load: got problems %v; want none", describe(problems))
	}
	doc, problems := Decode(src.Root)
	if problems != nil {
		t.Fatalf("Decode: got problems %v; want none", describe(problems))
	}
	return src, doc
}

func describe(problems []Problem) string {
	var b strings.Builder
	for _, p := range problems {
		fmt.Fprintf(&b, "\n  %q %s", p.Pointer, p.Message)
		if p.Pos != nil {
			fmt.Fprintf(&b, " at %s:%d:%d", p.Pos.File, p.Pos.Line, p.Pos.Column)
		}
	}
	return b.String()
}

// quote is s as a YAML double-quoted string, which takes JSON's escapes.
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func ids[T interface{ Base() *gatehouse.Meta }](list []T) []string {
	var out []string
	for _, e := range list {
		out = append(out, e.Base().ID)
	}
	return out
}

func TestLoadReadsOneFileWithItsSpecDocument(t *testing.T) {
	for _, tc := range []struct {
		file     string
		services int
		specs    int
	}{
		{"testdata/gateway.yaml", 2, 1},
		{"testdata/gateway.json", 1, 0},
	} {
		t.Run(tc.file, func(t *testing.T) {
			src, doc := load(t, LoadOptions{}, tc.file)
			if len(doc.Services) != tc.services || len(doc.Specs) != tc.specs {
				t.Fatalf("got %d services and %d specs; want %d and %d", len(doc.Services), len(doc.Specs), tc.services, tc.specs)
			}
			if p := src.Position("/services/0/url"); p == nil || p.File != tc.file || p.Line < 2 {
				t.Errorf("got place %v for /services/0/url; want one in %s", p, tc.file)
			}
			if tc.specs == 0 {
				return
			}
			want, err := os.ReadFile("testdata/orders-openapi.yaml")
			if err != nil {
				t.Fatal(err)
			}
			s := doc.Specs[0]
			if got, want := src.Files(), []string{tc.file, "testdata/orders-openapi.yaml"}; !reflect.DeepEqual(got, want) {
				t.Errorf("got files %v; want %v", got, want)
			}
			if s.Document != string(want) || s.MediaType != gatehouse.SpecYAML || s.DocumentFile != "" {
				t.Errorf("got spec document %q, media type %q, document_file %q; want the file's text as YAML, and no document_file", s.Document, s.MediaType, s.DocumentFile)
			}
			// A problem with the document read from a file is placed at
			// the document_file naming it.
			if p := src.Position("/specs/0/document"); p == nil || *p != (Pos{tc.file, 46, 20}) {
				t.Errorf("got place %v for /specs/0/document; want its document_file's, %s:46:20", p, tc.file)
			}
		})
	}
}

func TestLoadMergesADirectoryAndPlacesEveryValue(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"10-services.yaml": "format_version: \"1\"\nservices:\n  - id: s1\n    url: http://a\n",
		"20-routes.yaml":   "format_version: \"1\"\nroutes:\n  - id: r1\n    paths: [/a]\n  - id: r2\n    paths: [/b]\n",
		"30-more.json":     "{\"format_version\": \"1\",\n \"routes\": [\n  {\"id\": \"r3\", \"paths\": [\"/c\"]}\n ],\n \"services\": [{\"id\": \"s2\", \"url\": \"http://b\"}]}\n",
		"40-empty.yml":     "format_version: \"1\"\nroutes:\n",
		// Not read: hidden, not a document's extension, in a subdirectory.
		".hidden.yaml":    "nonsense: [",
		"notes.txt":       "nonsense: [",
		"sub/nested.yaml": "nonsense: [",
		"dir.yaml/x.yaml": "nonsense: [",
	})
	src, doc := load(t, LoadOptions{}, dir)
	if got, want := ids(doc.Services), []string{"s1", "s2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got services %v; want %v", got, want)
	}
	if got, want := ids(doc.Routes), []string{"r1", "r2", "r3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got routes %v; want %v", got, want)
	}
	services, routes, more := filepath.Join(dir, "10-services.yaml"), filepath.Join(dir, "20-routes.yaml"), filepath.Join(dir, "30-more.json")
	for _, tc := range []struct {
		pointer string
		want    *Pos
	}{
		{"/services/0/url", &Pos{services, 4, 10}},
		{"/services/1", &Pos{more, 5, 15}},
		{"/services/1/url", &Pos{more, 5, 35}},
		{"/routes/0", &Pos{routes, 3, 5}},
		{"/routes/1/paths/0", &Pos{routes, 6, 13}},
		{"/routes/2", &Pos{more, 3, 3}},
		{"/routes/2/paths", &Pos{more, 3, 25}},
		{"/routes/2/paths/0", &Pos{more, 3, 26}},
		{"/routes", &Pos{routes, 3, 3}},
		{"/routes/3", nil},
		{"/routes/2/methods", nil}, // not in the file
		{"", nil},                  // the merged document is in no one file
	} {
		if got := src.Position(tc.pointer); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Position(%q) = %v; want %v", tc.pointer, got, tc.want)
		}
	}
	// Locate places what a later stage finds at the nearest value a
	// file holds.
	p := src.Locate(Problem{Pointer: "/routes/2/methods/0", Message: "is not a method"})
	if p.Pos == nil || *p.Pos != (Pos{more, 3, 3}) {
		t.Errorf("Locate placed it at %v; want %s:3:3, the route", p.Pos, more)
	}
	if p := src.Locate(Problem{Pointer: "/routes/0", Pos: &Pos{File: "x"}}); p.Pos.File != "x" {
		t.Errorf("Locate replaced a place already given: %v", p.Pos)
	}
}

func TestLoadReadsAConfigMapDirectoryOnce(t *testing.T) {
	// A ConfigMap mounted as a volume: the data in a timestamped
	// directory, ..data a symlink to it, and each key a symlink through
	// ..data, so that an update swaps one symlink.
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"..2026_12_04_22_00_00.123456789/routes.yaml":   "format_version: \"1\"\nroutes: [{id: r1, paths: [/a], service_id: s1}]\n",
		"..2026_12_04_22_00_00.123456789/services.yaml": "format_version: \"1\"\nservices: [{id: s1, url: http://a}]\nspecs: [{id: o, document_file: spec.json}]\n",
		"..2026_12_04_22_00_00.123456789/spec.json":     `{"openapi": "3.0.3"}`,
		"..data":        "-> ..2026_12_04_22_00_00.123456789",
		"routes.yaml":   "-> ..data/routes.yaml",
		"services.yaml": "-> ..data/services.yaml",
		"spec.json":     "-> ..data/spec.json",
	})
	src, doc := load(t, LoadOptions{}, dir)
	if got := ids(doc.Routes); !reflect.DeepEqual(got, []string{"r1"}) {
		t.Errorf("got routes %v; want r1 once", got)
	}
	if got := ids(doc.Services); !reflect.DeepEqual(got, []string{"s1"}) {
		t.Errorf("got services %v; want s1 once", got)
	}
	if len(doc.Specs) != 1 || doc.Specs[0].Document != `{"openapi": "3.0.3"}` || doc.Specs[0].MediaType != gatehouse.SpecJSON {
		t.Errorf("got specs %+v; want the document read through ..data, as JSON", doc.Specs)
	}
	if p := src.Position("/routes/0"); p == nil || p.File != filepath.Join(dir, "routes.yaml") {
		t.Errorf("got place %v; want routes.yaml as the directory lists it", p)
	}
	// spec.json is the spec's document, not a configuration file.
	want := []string{filepath.Join(dir, "routes.yaml"), filepath.Join(dir, "services.yaml"), filepath.Join(dir, "spec.json")}
	if got := src.Files(); !reflect.DeepEqual(got, want) {
		t.Errorf("got files %v; want %v", got, want)
	}
}

func TestLoadReadsAFileNamedTwiceOnce(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a.yaml": "format_version: \"1\"\nroutes: [{id: r1}]\n"})
	_, doc := load(t, LoadOptions{}, dir, filepath.Join(dir, "a.yaml"))
	if got := ids(doc.Routes); !reflect.DeepEqual(got, []string{"r1"}) {
		t.Errorf("got routes %v; want r1 once", got)
	}
}

func TestLoadSubstitutesEnvironmentVariables(t *testing.T) {
	env := map[string]string{
		"GATEHOUSE_VAR_KEY":   "s3cret-key-0123456789",
		"GATEHOUSE_VAR_HOST":  "orders.internal",
		"GATEHOUSE_VAR_PORT":  "8080",
		"GATEHOUSE_VAR_EMPTY": "",
		"HOME":                "/root",
	}
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	for _, tc := range []struct {
		desc, value string
		want        string // the value substituted, or
		problem     string // a part of the problem's message
	}{
		{"one variable", `${{ env "GATEHOUSE_VAR_KEY" }}`, "s3cret-key-0123456789", ""},
		{"spaces optional", `${{env "GATEHOUSE_VAR_KEY"}}`, "s3cret-key-0123456789", ""},
		{"more spaces", `${{   env   "GATEHOUSE_VAR_KEY"   }}`, "s3cret-key-0123456789", ""},
		{"several in one string", `http://${{ env "GATEHOUSE_VAR_HOST" }}:${{ env "GATEHOUSE_VAR_PORT" }}/v1`, "http://orders.internal:8080/v1", ""},
		{"set and empty", `a${{ env "GATEHOUSE_VAR_EMPTY" }}b`, "ab", ""},
		{"no expression", `plain $ {{ text }}`, "plain $ {{ text }}", ""},
		{"another prefix", `${{ env "HOME" }}`, "", "may not read"},
		{"the prefix alone", `${{ env "GATEHOUSE_VAR_" }}`, "", "may not read"},
		{"unset", `${{ env "GATEHOUSE_VAR_NOPE" }}`, "", "not set"},
		{"not an env expression", `${{ HOME }}`, "", "not an expression"},
		{"single quotes", `${{ env 'GATEHOUSE_VAR_KEY' }}`, "", "not an expression"},
		{"not closed", `${{ env "GATEHOUSE_VAR_KEY"`, "", "without a closing"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "c.yaml")
			writeFiles(t, dir, map[string]string{"c.yaml": "format_version: \"1\"\nconsumers:\n  - id: c\n    credentials:\n      - id: k\n        type: key-auth\n        key: " + quote(tc.value) + "\n"})
			src, problems := Load([]string{file}, LoadOptions{Env: lookup})
			if tc.problem != "" {
				want := Pos{file, 7, 14}
				if len(problems) != 1 || problems[0].Pointer != "/consumers/0/credentials/0/key" || !strings.Contains(problems[0].Message, tc.problem) ||
					problems[0].Pos == nil || *problems[0].Pos != want || problems[0].Code != gatehouse.EINVALID {
					t.Fatalf("got %v; want one problem with %q at /consumers/0/credentials/0/key, %v", describe(problems), tc.problem, want)
				}
				return
			}
			if problems != nil {
				t.Fatalf("got problems %v", describe(problems))
			}
			doc, problems := Decode(src.Root)
			if problems != nil {
				t.Fatalf("Decode: %v", describe(problems))
			}
			if got := doc.Consumers[0].Credentials[0].Key; got != tc.want {
				t.Errorf("got %q; want %q", got, tc.want)
			}
		})
	}
}

func TestLoadSubstitutionYieldsStringsEverywhereButKeys(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"c.yaml": `format_version: "1"
routes:
  - id: r
    priority: ${{ env "GATEHOUSE_VAR_N" }}
    paths: ['${{ env "GATEHOUSE_VAR_N" }}']
policies:
  - id: p
    config: {deep: [{'${{ env "GATEHOUSE_VAR_N" }}': '${{ env "GATEHOUSE_VAR_N" }}'}]}
`})
	src, problems := Load([]string{filepath.Join(dir, "c.yaml")}, LoadOptions{Env: func(string) (string, bool) { return "5", true }})
	if problems != nil {
		t.Fatal(describe(problems))
	}
	route := src.Root.(map[string]any)["routes"].([]any)[0].(map[string]any)
	if route["priority"] != "5" || route["paths"].([]any)[0] != "5" {
		t.Errorf("got route %v; want the string \"5\" in both places", route)
	}
	deep := src.Root.(map[string]any)["policies"].([]any)[0].(map[string]any)["config"].(map[string]any)["deep"].([]any)[0]
	if want := map[string]any{`${{ env "GATEHOUSE_VAR_N" }}`: "5"}; !reflect.DeepEqual(deep, want) {
		t.Errorf("got %v; want %v", deep, want)
	}
	// A string where the format wants a number is Decode's to refuse.
	if _, problems := Decode(src.Root); len(problems) != 1 || problems[0].Pointer != "/routes/0/priority" {
		t.Errorf("Decode: got %v; want /routes/0/priority refused", describe(problems))
	}
}

func TestLoadReadsDocumentFilesOnlyInsideTheirDirectory(t *testing.T) {
	outside := t.TempDir()
	writeFiles(t, outside, map[string]string{"secret.yaml": "openapi: 3.0.3\n"})
	for _, tc := range []struct {
		desc      string
		spec      string // the spec entry, in flow YAML
		files     map[string]string
		document  string
		mediaType string
		problem   string // a part of the problem at /specs/0/document_file
	}{
		{"next to the file", "{id: s, document_file: o.yaml}", map[string]string{"o.yaml": "openapi: 3.1.0\n"}, "openapi: 3.1.0\n", gatehouse.SpecYAML, ""},
		{"in a subdirectory, JSON", "{id: s, document_file: specs/o.json}", map[string]string{"specs/o.json": "{}"}, "{}", gatehouse.SpecJSON, ""},
		{"its text is kept as written", "{id: s, document_file: o.yaml}", map[string]string{"o.yaml": `x: ${{ env "HOME" }}`}, `x: ${{ env "HOME" }}`, gatehouse.SpecYAML, ""},
		{".yml", "{id: s, document_file: o.yml}", map[string]string{"o.yml": "x"}, "x", gatehouse.SpecYAML, ""},
		{"a media type given is kept", "{id: s, document_file: o.txt, media_type: application/vnd.oai.openapi}", map[string]string{"o.txt": "x"}, "x", "application/vnd.oai.openapi", ""},
		{"an unknown extension sets none", "{id: s, document_file: o.txt}", map[string]string{"o.txt": "x"}, "x", "", ""},
		{"a symlink inside the directory", "{id: s, document_file: link.yaml}", map[string]string{"real/o.yaml": "y", "link.yaml": "-> real/o.yaml"}, "y", gatehouse.SpecYAML, ""},
		{"absolute", "{id: s, document_file: " + filepath.Join(outside, "secret.yaml") + "}", nil, "", "", "relative"},
		{"up and out", "{id: s, document_file: ../secret.yaml}", nil, "", "", "relative"},
		{"up and back in", "{id: s, document_file: specs/../../x/secret.yaml}", nil, "", "", "relative"},
		{"a symlink leading outside", "{id: s, document_file: link.yaml}", map[string]string{"link.yaml": "-> " + filepath.Join(outside, "secret.yaml")}, "", "", "escapes"},
		{"a symlinked directory leading outside", "{id: s, document_file: out/secret.yaml}", map[string]string{"out": "-> " + outside}, "", "", "escapes"},
		{"missing", "{id: s, document_file: none.yaml}", nil, "", "", "no such file"},
		{"a directory", "{id: s, document_file: specs}", map[string]string{"specs/x": ""}, "", "", "regular file"},
		{"empty", "{id: s, document_file: ''}", nil, "", "", "relative"},
		{"with a document", "{id: s, document_file: o.yaml, document: {openapi: 3.1.0}}", map[string]string{"o.yaml": "x"}, "", "", "inline or in a file"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "conf")
			writeFiles(t, dir, tc.files)
			writeFiles(t, dir, map[string]string{"c.yaml": "format_version: \"1\"\nspecs:\n  - " + tc.spec + "\n"})
			file := filepath.Join(dir, "c.yaml")
			src, problems := Load([]string{file}, LoadOptions{})
			if tc.problem != "" {
				if len(problems) != 1 || problems[0].Pointer != "/specs/0/document_file" || !strings.Contains(problems[0].Message, tc.problem) ||
					problems[0].Pos == nil || problems[0].Pos.File != file || problems[0].Pos.Line != 3 {
					t.Fatalf("got %v; want one problem with %q at /specs/0/document_file, line 3", describe(problems), tc.problem)
				}
				return
			}
			if problems != nil {
				t.Fatal(describe(problems))
			}
			doc, problems := Decode(src.Root)
			if problems != nil {
				t.Fatal(describe(problems))
			}
			s := doc.Specs[0]
			if s.Document != tc.document || s.MediaType != tc.mediaType || s.DocumentFile != "" {
				t.Errorf("got document %q, media type %q, document_file %q; want %q, %q and none", s.Document, s.MediaType, s.DocumentFile, tc.document, tc.mediaType)
			}
		})
	}
}

func TestLoadDocumentFileThroughAYAMLAlias(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"d.yaml": "format_version: \"1\"\nspecs:\n  - &s {id: a, document_file: o.yaml}\n  - *s\n",
		"o.yaml": "openapi: 3.1.0\n",
	})
	src, problems := Load([]string{filepath.Join(dir, "d.yaml")}, LoadOptions{})
	if problems != nil {
		t.Fatal(describe(problems))
	}
	doc, problems := Decode(src.Root)
	if problems != nil {
		t.Fatal(describe(problems))
	}
	for i, s := range doc.Specs {
		if s.Document != "openapi: 3.1.0\n" || s.DocumentFile != "" {
			t.Errorf("spec %d: got document %q, document_file %q; want the file read for both", i, s.Document, s.DocumentFile)
		}
	}
}

func TestLoadRefusesFilesThatAreNotDocuments(t *testing.T) {
	bomb := "format_version: \"1\"\na: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for c := 'b'; c <= 'k'; c++ {
		p := c - 1
		bomb += fmt.Sprintf("%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", c, c, p, p, p, p, p, p, p, p, p, p)
	}
	for _, tc := range []struct {
		desc    string
		files   map[string]string
		path    string // what Load is given, under the directory
		pointer string
		file    string // the problem's file, under the directory
		line    int
	}{
		{"a stray YAML file", map[string]string{"a.yaml": "format_version: \"1\"\n", "compose.yaml": "services:\n  web: {image: nginx}\n"}, "", "/format_version", "compose.yaml", 1},
		{"another format version", map[string]string{"a.yaml": "routes: []\nformat_version: \"2\"\n"}, "a.yaml", "/format_version", "a.yaml", 2},
		{"an unknown member", map[string]string{"a.yaml": "format_version: \"1\"\n\nroute: []\n"}, "a.yaml", "/route", "a.yaml", 3},
		{"a list that is not one", map[string]string{"a.yaml": "format_version: \"1\"\nroutes: {id: r}\n"}, "a.yaml", "/routes", "a.yaml", 2},
		{"not an object", map[string]string{"a.yaml": "- format_version\n"}, "a.yaml", "", "a.yaml", 1},
		{"YAML syntax", map[string]string{"a.yaml": "format_version: \"1\"\nroutes: [\n"}, "a.yaml", "", "a.yaml", 3},
		{"JSON syntax", map[string]string{"a.json": "{\"format_version\": \"1\",\n}"}, "a.json", "", "a.json", 2},
		{"empty", map[string]string{"a.yaml": ""}, "a.yaml", "", "a.yaml", 0},
		{"a YAML alias bomb, refused quickly", map[string]string{"a.yaml": bomb}, "a.yaml", "/f/7", "a.yaml", 7},
		{"missing", nil, "none.yaml", "", "none.yaml", 0},
		{"an empty directory", map[string]string{"README.md": "x"}, "", "", "", 0},
		{"a broken symlink", map[string]string{"a.yaml": "-> gone.yaml"}, "", "", "a.yaml", 0},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tc.files)
			start := time.Now()
			_, problems := Load([]string{filepath.Join(dir, tc.path)}, LoadOptions{})
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
			if len(problems) != 1 {
				t.Fatalf("got %v; want one problem", describe(problems))
			}
			p := problems[0]
			want := Pos{File: filepath.Join(dir, tc.file), Line: tc.line}
			if p.Pointer != tc.pointer || p.Pos == nil || p.Pos.File != want.File || p.Pos.Line != want.Line || p.Message == "" || p.Code != gatehouse.EINVALID {
				t.Errorf("got %v; want a problem at %q in %s line %d", describe(problems), tc.pointer, want.File, want.Line)
			}
		})
	}
}

func TestLoadWithoutPathsIsAProblem(t *testing.T) {
	if _, problems := Load(nil, LoadOptions{}); len(problems) != 1 {
		t.Errorf("got %v; want one problem", describe(problems))
	}
}

func TestLoadListsAtMostMaxErrorsProblems(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("format_version: \"1\"\nroutes:\n")
	for i := range 150 {
		fmt.Fprintf(&b, "  - {id: r%d, name: '${{ env \"GATEHOUSE_VAR_UNSET\" }}'}\n", i)
	}
	writeFiles(t, dir, map[string]string{"a.yaml": b.String()})
	_, problems := Load([]string{filepath.Join(dir, "a.yaml")}, LoadOptions{Env: func(string) (string, bool) { return "", false }})
	if len(problems) != strictjson.MaxErrors+1 {
		t.Fatalf("got %d problems; want %d and one counting the rest", len(problems), strictjson.MaxErrors+1)
	}
	if last := problems[len(problems)-1]; !strings.Contains(last.Message, "50 more") {
		t.Errorf("got last problem %+v; want one counting 50 more", last)
	}
}

func TestReadRefusesAnEnvExpressionTheServerWouldNotSubstitute(t *testing.T) {
	for _, tt := range []struct {
		desc, doc, pointer string
	}{
		{"an API key", `{"format_version": "1", "consumers": [{"id": "c1", "name": "alice", "credentials": [{"id": "k1", "type": "key-auth", "key": "${{env \"GATEHOUSE_VAR_X\"}}"}]}]}`,
			"/consumers/0/credentials/0/key"},
		{"a list's string", "format_version: \"1\"\nroutes:\n  - id: r1\n    paths: [/a, \"/b${{ env \\\"GATEHOUSE_VAR_P\\\" }}\"]\n",
			"/routes/0/paths/1"},
		{"a spec's name, beside its document", `{"format_version": "1", "specs": [{"id": "s", "name": "${{", "document": "x"}]}`,
			"/specs/0/name"},
		{"a spec's document, which is text served as written", `{"format_version": "1", "specs": [{"id": "s", "name": "s", "document": {"info": {"description": "use ${{ secrets.X }}"}}}]}`,
			""},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			_, problems := Read([]byte(tt.doc))
			if tt.pointer == "" {
				if len(problems) > 0 {
					t.Fatalf("got %v; want none", problems)
				}
				return
			}
			if len(problems) != 1 || problems[0].Pointer != tt.pointer || problems[0].Code != gatehouse.EINVALID ||
				!strings.Contains(problems[0].Message, "the server does not substitute ${{ env }}: send files with `gatehouse config apply`, which does") {
				t.Fatalf("got %+v; want one 400 problem at %s saying the server does not substitute", problems, tt.pointer)
			}
		})
	}
}
