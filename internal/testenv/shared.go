package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// SharedOpenAPIDir is the corpus of third-party OpenAPI descriptions,
// testdata/openapi at the repository's root: the documents of
// ../shared/testdata/openapi, copied unchanged with their SOURCES.md, so
// that the tests need nothing outside the repository wherever it is
// cloned. It fails the test if the corpus is missing.
func SharedOpenAPIDir(t testing.TB) string {
	t.Helper()
	start, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := start; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "testdata", "openapi")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	t.Fatalf("no go.mod at or above %s: the corpus testdata/openapi is found from the repository's root", start)
	return ""
}

// SharedOpenAPI reads the document name of the shared corpus
// (SharedOpenAPIDir).
func SharedOpenAPI(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(SharedOpenAPIDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
