package forward

import (
	"context"
	"io"
	"net/textproto"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// TestRoundTripRelayingTellsTheHookOfInterimResponsesOnEveryTransport:
// the hook RoundTripRelaying takes hears an upstream's 103 once, with its
// fields, whichever transport serves the target, and only the
// h1Transport's pools say they release the request at RoundTrip's end.
func TestRoundTripRelayingTellsTheHookOfInterimResponsesOnEveryTransport(t *testing.T) {
	skipVerify, err := NewTLS(TLSSettings{SkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		desc         string
		up           *testupstream.Upstream
		cfg          Config
		wantReleases bool
	}{
		{"http: the h1Transport", testupstream.Start(t), Config{}, true},
		{"https: net/http's HTTP/1.1", testupstream.Start(t, testupstream.WithTLS()), Config{TLS: skipVerify}, false},
		{"h2c: net/http's HTTP/2", testupstream.Start(t, testupstream.WithH2C()), Config{HTTP2: true}, false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			tc.cfg.Targets = []Target{{URL: mustURL(t, tc.up.URL), Weight: 1}}
			p := newTestPool(t, tc.cfg)
			if got := p.ReleasesRequests(); got != tc.wantReleases {
				t.Errorf("ReleasesRequests() = %v; want %v", got, tc.wantReleases)
			}
			var codes []int
			var hints []string
			hook := func(code int, h textproto.MIMEHeader) error {
				codes = append(codes, code)
				hints = append(hints, h.Get("X-Hint"))
				return nil
			}
			for range 2 { // the second on a kept-alive connection
				codes, hints = nil, nil
				resp, _, err := p.RoundTripRelaying(request(t, context.Background(), "GET", "/status/103?set=X-Hint:early", nil), hook)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("got final status %d; want 200", resp.StatusCode)
				}
				if len(codes) != 1 || codes[0] != 103 || hints[0] != "early" {
					t.Errorf("hook got %v %q; want one 103 with X-Hint: early", codes, hints)
				}
			}
			// A round trip without a hook on the connection the hooked
			// one used tells no one.
			codes = nil
			resp, _, err := p.RoundTrip(request(t, context.Background(), "GET", "/status/103", nil))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if len(codes) != 0 {
				t.Errorf("a round trip without a hook reached the last one's: %v", codes)
			}
		})
	}
}
