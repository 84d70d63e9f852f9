package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// SharedOpenAPI reads a document of the shared corpus of third-party
// OpenAPI descriptions, shared/testdata/openapi: a sibling of the
// repository (CI clones it beside the repository) or of a directory
// above it (a worktree). In CI a missing corpus fails the test; elsewhere
// it skips.
func SharedOpenAPI(t testing.TB, name string) []byte {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "..", "shared", "testdata", "openapi", name))
		if err == nil {
			return b
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	if InCI() {
		t.Fatalf("the shared OpenAPI corpus (../shared/testdata/openapi/%s) is missing", name)
	}
	t.Skipf("the shared OpenAPI corpus (../shared/testdata/openapi/%s) is not beside the repository", name)
	return nil
}
