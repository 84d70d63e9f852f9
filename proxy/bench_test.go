package proxy

import (
	"io"
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// BenchmarkProxy measures one proxied GET of 1 KiB through the whole data
// plane (server stack, decision, upstream pool, streaming) over loopback,
// keep-alive on both sides. Its allocs/op include the client's and the
// upstream's, which run in the same process.
//
//	go test -run '^$' -bench Proxy -benchmem ./proxy/
func BenchmarkProxy(b *testing.B) {
	up := testupstream.Start(b, testupstream.WithNoRecord())
	g := newGateway(b)
	g.route(up.URL, "", "")
	req, _ := http.NewRequest("GET", g.base+"/bytes/1024", nil)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := g.client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
