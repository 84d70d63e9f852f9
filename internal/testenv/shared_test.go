package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// A git worktree sits deeper than the repository CI clones beside
// shared/: the corpus is found beside any directory above the test's.
func TestSharedOpenAPIIsFoundBesideADirectoryAboveTheTests(t *testing.T) {
	root := t.TempDir()
	corpus := filepath.Join(root, "shared", "testdata", "openapi")
	pkg := filepath.Join(root, "wt", "repo", "pkg")
	for _, d := range []string{corpus, pkg} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(corpus, "doc.yaml"), []byte("openapi: 3.1.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(pkg)
	t.Setenv("CI", "true") // not found fails, rather than skips
	if got, want := SharedOpenAPIDir(t), corpus; got != want {
		t.Fatalf("SharedOpenAPIDir = %s; want %s", got, want)
	}
	if got := string(SharedOpenAPI(t, "doc.yaml")); got != "openapi: 3.1.0\n" {
		t.Fatalf("SharedOpenAPI = %q", got)
	}
}
