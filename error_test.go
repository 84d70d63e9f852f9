package gatehouse_test

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// TestCodesListsEveryCodeConstant reads the package's source for the
// constants of type Code, so that a code added without being listed in
// Codes fails here. problem's tests prove that each listed code has a
// status; together, no code can fall through to a 500 unnoticed.
func TestCodesListsEveryCodeConstant(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	declared := map[gatehouse.Code]string{} // value → constant name
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				if typ, ok := vs.Type.(*ast.Ident); !ok || typ.Name != "Code" {
					continue
				}
				for i, id := range vs.Names {
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Fatalf("%s: %s is not a string literal; this test reads only those", fset.Position(id.Pos()), id.Name)
					}
					v, _ := strconv.Unquote(lit.Value)
					declared[gatehouse.Code(v)] = id.Name
				}
			}
		}
	}
	if len(declared) == 0 {
		t.Fatal("found no constants of type Code")
	}
	for code, name := range declared {
		if !slices.Contains(gatehouse.Codes, code) {
			t.Errorf("%s (%q) is not in gatehouse.Codes, so it has no status and would be answered as 500", name, code)
		}
	}
	for _, code := range gatehouse.Codes {
		if _, ok := declared[code]; !ok {
			t.Errorf("gatehouse.Codes lists %q, which no constant declares", code)
		}
	}
}

func TestAbsentMeansNeverExistedOrDeleted(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{gatehouse.Errorf(gatehouse.ENOTFOUND, "x"), true},
		{gatehouse.Errorf(gatehouse.EGONE, "x"), true},
		{fmt.Errorf("wrapped: %w", gatehouse.Errorf(gatehouse.EGONE, "x")), true},
		{gatehouse.Errorf(gatehouse.ECONFLICT, "x"), false},
		{gatehouse.Unavailable(errors.New("down")), false},
	} {
		if got := gatehouse.Absent(tc.err); got != tc.want {
			t.Errorf("Absent(%v) = %v; want %v", tc.err, got, tc.want)
		}
	}
}
