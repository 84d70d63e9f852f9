package audit

import (
	"net/http"
	"testing"
)

// The transport already reads no body for HEAD, 304 and 204 (so
// ContentLength is 0 there); BodyOf must say the same when given the
// header's length, which describes the representation.
func TestBodyOfTellsABodyFromTheRepresentationsLength(t *testing.T) {
	cl := func(v string) http.Header { return http.Header{"Content-Length": {v}} }
	for _, tc := range []struct {
		name    string
		method  string
		status  int
		length  int64
		header  http.Header
		chunked bool
		want    Body
	}{
		{"HEAD with a length", "HEAD", 200, 1234, cl("1234"), false, BodyAbsent},
		{"304 with the representation's length", "GET", 304, 1234, cl("1234"), false, BodyAbsent},
		{"304 chunked", "GET", 304, -1, nil, true, BodyAbsent},
		{"204 with a length", "GET", 204, 0, cl("5"), false, BodyPresent},
		{"204 with length 0", "GET", 204, 0, cl("0"), false, BodyAbsent},
		{"204 chunked", "GET", 204, 0, nil, true, BodyPresent},
		{"200 with a length", "GET", 200, 5, cl("5"), false, BodyPresent},
		{"200 with length 0", "GET", 200, 0, cl("0"), false, BodyAbsent},
		{"200 chunked", "GET", 200, -1, nil, true, BodyUnknown},
		{"200 to the close", "GET", 200, -1, nil, false, BodyUnknown},
	} {
		if got := BodyOf(tc.method, tc.status, tc.length, tc.header, tc.chunked); got != tc.want {
			t.Errorf("%s: got %d; want %d", tc.name, got, tc.want)
		}
	}
}

func TestEveryRuleThatNeedsNoSpecHasOneCheckAndTheTablesSeverity(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range checks {
		if seen[c.rule] {
			t.Errorf("%s is judged twice", c.rule)
		}
		seen[c.rule] = true
	}
	for _, r := range Rules {
		if !r.Spec && !seen[r.ID] {
			t.Errorf("%s needs no spec but nothing judges it", r.ID)
		}
		if r.Spec && seen[r.ID] {
			t.Errorf("%s needs a spec but is judged without one", r.ID)
		}
		if SeverityOf(r.ID) != r.Severity {
			t.Errorf("%s: SeverityOf %q; want %q", r.ID, SeverityOf(r.ID), r.Severity)
		}
	}
}
