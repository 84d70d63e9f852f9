package admin

import (
	"fmt"
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
