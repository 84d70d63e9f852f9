package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// SharedOpenAPIDir is the shared corpus of third-party OpenAPI
// descriptions, shared/testdata/openapi, read in place, never copied: a
// sibling of the repository (CI clones it beside the repository) or of a
// directory above it (a git worktree nested deeper), the first found
// going up from the test's directory. Without it the test is skipped,
// loudly, except in CI, where it fails.
func SharedOpenAPIDir(t testing.TB) string {
	t.Helper()
	start, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := start; ; {
		shared := filepath.Join(dir, "shared", "testdata", "openapi")
		if fi, err := os.Stat(shared); err == nil && fi.IsDir() {
			return shared
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	if InCI() {
		t.Fatalf("shared/testdata/openapi is not beside %s or above it, and CI=true requires the shared test documents", start)
	}
	msg := fmt.Sprintf("SKIPPED: shared/testdata/openapi is not beside %s or above it, so third-party documents were not checked", start)
	fmt.Fprintf(os.Stderr, "\n!!! %s: %s\n\n", t.Name(), msg)
	t.Skip(msg)
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
