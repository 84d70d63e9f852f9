package proxy

import (
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testupstream"
)

func TestRouteUnderMaintenanceReturns503WithMessageAndRetryAfter(t *testing.T) {
	up := testupstream.Start(t)
	g := newGateway(t)
	g.apply(newPolicyFixture(t, up.URL).
		policy(`{"name":"down","type":"maintenance","config":{"message":"Back at noon.","retry_after_seconds":120}}`).rev)
	for _, method := range []string{"GET", "POST", "HEAD"} {
		r := g.do(method, "/anything", nil)
		if method == "HEAD" {
			if r.status != http.StatusServiceUnavailable || len(r.body) != 0 {
				t.Fatalf("HEAD: status %d, %d body bytes; want 503 without a body", r.status, len(r.body))
			}
			continue
		}
		doc := assertProblem(t, r, http.StatusServiceUnavailable)
		if doc["detail"] != "Back at noon." || r.header.Get("Retry-After") != "120" {
			t.Fatalf("%s: detail %q, Retry-After %q; want the configured message and 120", method, doc["detail"], r.header.Get("Retry-After"))
		}
	}
	if n := up.Requests(); n != 0 {
		t.Fatalf("the upstream saw %d requests during maintenance; want 0", n)
	}
}
