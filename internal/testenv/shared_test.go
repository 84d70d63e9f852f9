package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// The corpus is found from any package directory, at the root of the
// module it belongs to.
func TestSharedOpenAPIIsFoundAtTheRepositorysRoot(t *testing.T) {
	root := t.TempDir()
	corpus := filepath.Join(root, "testdata", "openapi")
	pkg := filepath.Join(root, "a", "pkg")
	for _, d := range []string{corpus, pkg} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{"go.mod": "module x\n", "testdata/openapi/doc.yaml": "openapi: 3.1.0\n"} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(pkg)
	if got, want := SharedOpenAPIDir(t), corpus; got != want {
		t.Fatalf("SharedOpenAPIDir = %s; want %s", got, want)
	}
	if got := string(SharedOpenAPI(t, "doc.yaml")); got != "openapi: 3.1.0\n" {
		t.Fatalf("SharedOpenAPI = %q", got)
	}
}
