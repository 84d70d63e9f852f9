package admin

import (
	"fmt"
	"strings"
	"testing"
)

// The admin API end to end: HTTP/1.1 keep-alive client, the server stack,
// authentication, validation and a SQLite store with synchronous=FULL, so
// a create includes its fsync.
//
//	go test -run '^$' -bench . -benchmem ./admin/

func BenchmarkCreateService(b *testing.B) {
	api := newTestAPI(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		api.must(201, "POST", "/admin/v1/services", fmt.Sprintf(`{"name":"svc-%d","url":"http://10.0.0.1:8080/api"}`, i))
	}
}

func BenchmarkGetService(b *testing.B) {
	api := newTestAPI(b)
	api.must(201, "POST", "/admin/v1/services", `{"id":"s","name":"s","url":"http://10.0.0.1:8080/api"}`)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		api.must(200, "GET", "/admin/v1/services/s", "")
	}
}

func BenchmarkGetServiceParallel(b *testing.B) {
	api := newTestAPI(b)
	api.must(201, "POST", "/admin/v1/services", `{"id":"s","name":"s","url":"http://10.0.0.1:8080/api"}`)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			api.must(200, "GET", "/admin/v1/services/s", "")
		}
	})
}

// A whole configuration of 10,000 routes in one request: read, checked,
// planned against the draft and applied in one store transaction.
//
//	go test -run '^$' -bench ConfigApply -benchtime 1x -count 3 ./admin/
func BenchmarkConfigApply10000Routes(b *testing.B) {
	var doc strings.Builder
	doc.WriteString(`{"format_version":"1","services":[{"id":"s","name":"s","url":"http://10.0.0.1:8080"}],"routes":[`)
	for i := range 10_000 {
		if i > 0 {
			doc.WriteByte(',')
		}
		fmt.Fprintf(&doc, `{"id":"r%d","paths":["/api/v1/items-%d/{id}"],"methods":["GET","PUT"],"service_id":"s"}`, i, i)
	}
	doc.WriteString(`]}`)
	body := doc.String()
	for b.Loop() {
		b.StopTimer()
		api := newTestAPI(b)
		b.StartTimer()
		cs := api.must(200, "PUT", "/admin/v1/config", body)
		b.StopTimer()
		if !strings.Contains(string(cs.body), `"create":10001`) {
			b.Fatalf("the change set does not count 10,001 creates: %.300s", cs.body)
		}
		b.StartTimer()
	}
}
