package gatehouse

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDomainImportsNoOuterPackage: the domain is what every other package
// builds on; it depends on none of them (the data plane, the admin API,
// the stores), only on internal helpers and on openapi, which reads the
// APIs' documents for the Spec resource's validation and imports nothing of
// gatehouse's itself.
func TestDomainImportsNoOuterPackage(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	const module = "github.com/gatehouse/gatehouse/"
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, module) && !strings.HasPrefix(path, module+"internal/") && path != module+"openapi" {
				t.Errorf("%s imports %s", name, path)
			}
		}
	}
}
