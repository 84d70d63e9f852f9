package openapi

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testenv"
)

// BenchmarkCheckParameters is the whole head check of a GET with query,
// header and path parameters: the match, every parameter decoded and
// validated, Accept.
func BenchmarkCheckParameters(b *testing.B) {
	s := stylesSpec(b)
	r := httptest.NewRequest("GET", "/v2/items?limit=20&sort=asc&since=2026-12-04T10:00:00Z&tags=1&tags=2&filter[min]=1.5", nil)
	r.Header.Set("X-Rate", "5")
	r.Header.Set("Accept", "application/json")
	if _, ref := s.CheckHead(r); ref != nil {
		b.Fatal(ref)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ref := s.CheckHead(r); ref != nil {
			b.Fatal(ref)
		}
	}
}

// BenchmarkCheckPathParameter is a GET of one path parameter, the most
// common operation.
func BenchmarkCheckPathParameter(b *testing.B) {
	s := mustCompile(b, testenv.SharedOpenAPI(b, "oai-petstore.yaml"), "")
	r := httptest.NewRequest("GET", "/v1/pets/7", nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, ref := s.CheckHead(r); ref != nil {
			b.Fatal(ref)
		}
	}
}

// BenchmarkCheckBody1KiB validates a 1 KiB JSON body (an item with
// parts) against its schema, $refs and all: the read, the decode and
// the validation.
func BenchmarkCheckBody1KiB(b *testing.B) {
	s := stylesSpec(b)
	var parts []string
	for i := 0; len(strings.Join(parts, ",")) < 960; i++ {
		parts = append(parts, fmt.Sprintf(`{"name":"part-%03d","price":%d.25,"tag":null}`, i, i+1))
	}
	body := []byte(`{"name":"widget","price":12.5,"tag":"t","parts":[` + strings.Join(parts, ",") + `]}`)
	if len(body) < 1000 || len(body) > 1100 {
		b.Fatalf("body of %d bytes; want 1 KiB", len(body))
	}
	r := httptest.NewRequest("POST", "/v2/items", nil)
	r.ContentLength = int64(len(body))
	r.Header.Set("Content-Type", "application/json")
	op, ref := s.CheckHead(r)
	if ref != nil || !op.ReadsBody(r) {
		b.Fatal(ref)
	}
	ct := r.Header["Content-Type"]
	if ref := op.CheckBody(ct, body); ref != nil {
		b.Fatal(ref)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ref := s.CheckHead(r); ref != nil {
			b.Fatal(ref)
		}
		if ref := op.CheckBody(ct, body); ref != nil {
			b.Fatal(ref)
		}
	}
}
