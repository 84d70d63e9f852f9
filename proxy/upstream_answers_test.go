package proxy

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/testupstream"
)

func TestUpstreamStatusOutsideHTTPsRangeIs502(t *testing.T) {
	for _, status := range []string{"999", "600", "099", "000"} {
		t.Run(status, func(t *testing.T) {
			up := testupstream.Canned(t, []byte("HTTP/1.1 "+status+" Odd\r\nContent-Length: 2\r\n\r\nok"))
			g := newGateway(t)
			g.route(up, `,"retries":0`, "")
			assertProblem(t, g.get("/"), 502)
		})
	}
}
