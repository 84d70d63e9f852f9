package openapi

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testenv"
)

// sharedDocs are the third-party documents of ../shared/testdata/openapi.
var sharedDocs = []string{
	"apisguru-apideck.com-vault-10.0.0-openapi.yaml",
	"oai-api-with-examples.yaml",
	"oai-callback-example.yaml",
	"oai-link-example.yaml",
	"oai-non-oauth-scopes.json",
	"oai-petstore-expanded.yaml",
	"oai-petstore.yaml",
	"oai-uspto.yaml",
	"oai-webhook-example.yaml",
}

func mustParse(t testing.TB, text []byte) *Document {
	t.Helper()
	d, probs := Parse(text)
	if len(probs) > 0 {
		t.Fatalf("Parse: %v", probs)
	}
	return d
}

func mustCompile(t testing.TB, text []byte, basePath string) *Spec {
	t.Helper()
	s, probs := Compile(mustParse(t, text), basePath)
	if len(probs) > 0 {
		t.Fatalf("Compile: %v", probs)
	}
	return s
}

func TestEverySharedDocumentCompiles(t *testing.T) {
	for _, name := range sharedDocs {
		t.Run(name, func(t *testing.T) {
			mustCompile(t, testenv.SharedOpenAPI(t, name), "")
		})
	}
}

// testDoc reads a document of this package's testdata.
func testDoc(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCompileNamesWhatItCannotValidateByPointer(t *testing.T) {
	doc := `{"openapi":"3.0.3","info":{"title":"t","version":"1"},"paths":{"/a":{"post":{
		"parameters":[{"name":"q","in":"query","content":{"application/xml":{"schema":{"type":"string"}}}}],
		"requestBody":{"content":{"multipart/form-data":{"schema":{"type":"object","properties":{"n":{"type":"integer"}}}}}},
		"responses":{"200":{"description":"ok"}}}}}}`
	_, probs := Compile(mustParse(t, []byte(doc)), "/")
	var got []string
	for _, p := range probs {
		got = append(got, p.Pointer)
	}
	want := []string{
		"/paths/~1a/post/parameters/0/content/application~1xml",
		"/paths/~1a/post/requestBody/content/multipart~1form-data/schema",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("problems at\n%s\nwant\n%s\n(%v)", strings.Join(got, "\n"), strings.Join(want, "\n"), probs)
	}
}

func sharedDoc(t testing.TB, name string) []byte { return testenv.SharedOpenAPI(t, name) }
