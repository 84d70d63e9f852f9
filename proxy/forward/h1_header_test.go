package forward

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// TestH1ResponseHeaderOutlivesItsConnectionsNextResponse pins that every
// response has a header map of its own. The connection goes back to the
// idle stack when the body ends, yet the proxy reads the header after
// that: the audit policy's RespondEnd judges Content-Type and the problem
// form on pr.Resp.Header, which is resp.Header, once the body was copied.
// A map reused per connection would then hold the next response's fields.
func TestH1ResponseHeaderOutlivesItsConnectionsNextResponse(t *testing.T) {
	up := testupstream.Start(t)
	tr := newH1(t, up.URL, time.Minute)
	paths := []struct {
		path string
		want map[string]string
	}{
		{"/headers?set=Content-Type:application/problem%2Bjson&set=X-First:1", map[string]string{"Content-Type": "application/problem+json", "X-First": "1"}},
		{"/headers?set=Content-Type:text/plain&set=X-Second:2", map[string]string{"Content-Type": "text/plain", "X-Second": "2"}},
		{"/headers?set=Retry-After:3", map[string]string{"Retry-After": "3"}},
	}
	var resps []*http.Response
	var kept []http.Header
	for _, p := range paths {
		resp, err := tr.RoundTrip(newReq(t, context.Background(), "GET", up.URL+p.path, nil))
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp) // the connection goes back to the idle stack
		resps = append(resps, resp)
		kept = append(kept, maps.Clone(resp.Header))
	}
	if got := up.Connections(); got != 1 {
		t.Fatalf("got %d upstream connections; want 1, so that the responses share one", got)
	}
	for i, p := range paths {
		h := resps[i].Header
		if !maps.EqualFunc(h, kept[i], slices.Equal[[]string]) {
			t.Errorf("%s: header after later responses got %v; want %v", p.path, h, kept[i])
		}
		for name, v := range p.want {
			if got := h.Get(name); got != v {
				t.Errorf("%s: %s got %q; want %q", p.path, name, got, v)
			}
		}
	}
}
