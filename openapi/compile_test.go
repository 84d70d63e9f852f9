package openapi

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testenv"
)

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
	for _, sd := range sharedDocs(t) {
		t.Run(sd.file, func(t *testing.T) {
			mustCompile(t, testenv.SharedOpenAPI(t, sd.file), "")
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

// Parse calls Compile, so that what the data plane could not validate is
// refused when the document is written, at its pointer.
func TestParseRefusesWhatCompileCannotValidateByPointer(t *testing.T) {
	tests := []struct {
		desc, op string
		pointer  string
	}{
		{"a parameter whose content is not JSON",
			`"parameters":[{"name":"q","in":"query","content":{"application/xml":{"schema":{"type":"string"}}}}]`,
			"/paths/~1a/post/parameters/0/content/application~1xml"},
		{"a body type with a schema gatehouse cannot read",
			`"requestBody":{"content":{"multipart/form-data":{"schema":{"type":"object","properties":{"n":{"type":"integer"}}}}}}`,
			"/paths/~1a/post/requestBody/content/multipart~1form-data/schema"},
		{"a body type that is not a media type",
			`"requestBody":{"content":{"json":{"schema":{"type":"object"}}}}`,
			"/paths/~1a/post/requestBody/content/json"},
		{"a response type that is not a media type",
			`"responses":{"201":{"description":"ok","content":{"text":{}}}}`,
			"/paths/~1a/post/responses/201/content/text"},
		{"deepObject on a primitive",
			`"parameters":[{"name":"q","in":"query","style":"deepObject","schema":{"type":"string"}}]`,
			"/paths/~1a/post/parameters/0/style"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			op := tt.op
			if !strings.HasPrefix(op, `"responses"`) {
				op += `,"responses":{"200":{"description":"ok"}}`
			}
			doc := `{"openapi":"3.0.3","info":{"title":"t","version":"1"},"paths":{"/a":{"post":{` + op + `}}}}`
			d, probs := Parse([]byte(doc))
			if d != nil || len(probs) != 1 || probs[0].Pointer != tt.pointer {
				t.Fatalf("Parse = %v, %+v; want one problem at %s", d, probs, tt.pointer)
			}
		})
	}
}
