package openapi

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testenv"
)

// FuzzParse feeds Parse mutations of the shared documents and of the
// table's good and bad ones. Parse must not panic; a document it accepts
// has operations a router can take, and a refused one problems at
// pointers.
func FuzzParse(f *testing.F) {
	const maxSeed = 16 << 10
	files, _ := filepath.Glob(filepath.Join(testenv.SharedOpenAPIDir(f), "*"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		// Not the 170 KB apideck document (the parse tests read it whole):
		// the fuzzer mutates and minimises each input that finds new
		// coverage, and at that size a 10 s run could end mid-minimising,
		// which go test reports as a failure (context deadline exceeded).
		if len(data) <= maxSeed {
			f.Add(data)
		}
	}
	for _, tc := range unusualDocuments() {
		f.Add([]byte(tc.doc))
	}
	for _, tc := range badDocuments() {
		// The bounds' documents are megabytes or, for the alias bomb,
		// expand to the bound of values: each run of a mutation would
		// take seconds, and the fuzzer would do little else.
		if len(tc.doc) <= maxSeed && !strings.Contains(tc.doc, "*a, *a") {
			f.Add([]byte(tc.doc))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, problems := Parse(data)
		if (d == nil) == (len(problems) == 0) {
			t.Fatalf("got document %v and problems %v; want exactly one", d != nil, problems)
		}
		for _, p := range problems {
			if p.Pointer != "" && !strings.HasPrefix(p.Pointer, "/") || p.Message == "" {
				t.Fatalf("got problem %+v; want a pointer and a message", p)
			}
		}
		if len(problems) > MaxProblems+1 {
			t.Fatalf("got %d problems; want at most %d", len(problems), MaxProblems+1)
		}
		if d == nil {
			return
		}
		for _, op := range d.Operations {
			if !slices.Contains(methodOrder, op.Method) || !strings.HasPrefix(op.Path, "/") {
				t.Fatalf("got operation %+v; want an upper-case method and a path starting with /", op)
			}
		}
	})
}
