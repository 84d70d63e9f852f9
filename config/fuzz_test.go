package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/strictjson"
)

// FuzzRead feeds Read and Decode mutations of the fixtures and of the
// documents Decode refuses. Neither may panic; every problem has a
// pointer, a message and EINVALID; a document comes without problems
// and problems without a document; and Decode says the same of the same
// tree twice (no map order leaks into its answer).
func FuzzRead(f *testing.F) {
	files, _ := filepath.Glob("testdata/*")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, tc := range decodeCases() {
		f.Add([]byte(tc.doc))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		src, problems := Read(data)
		if (src == nil) == (len(problems) == 0) {
			t.Fatalf("Read gave source %v and problems %v; want exactly one", src != nil, problems)
		}
		if src == nil {
			checkProblems(t, problems)
			return
		}
		doc, problems := Decode(src.Root)
		if (doc == nil) == (len(problems) == 0) {
			t.Fatalf("Decode gave document %v and problems %v; want exactly one", doc != nil, problems)
		}
		checkProblems(t, problems)
		again, problems2 := Decode(src.Root)
		if !reflect.DeepEqual(problems, problems2) || (doc == nil) != (again == nil) {
			t.Fatalf("Decode changed its answer:\n %v\n %v", problems, problems2)
		}
		if doc != nil && doc.FormatVersion != FormatVersion {
			t.Fatalf("got format version %q", doc.FormatVersion)
		}
	})
}

func checkProblems(t *testing.T, problems []Problem) {
	t.Helper()
	if len(problems) > strictjson.MaxErrors+1 {
		t.Fatalf("got %d problems; want at most %d", len(problems), strictjson.MaxErrors+1)
	}
	for _, p := range problems {
		if p.Pointer != "" && !strings.HasPrefix(p.Pointer, "/") || p.Message == "" || p.Code != gatehouse.EINVALID {
			t.Fatalf("got problem %+v; want a pointer, a message and EINVALID", p)
		}
	}
}
