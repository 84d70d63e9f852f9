package policy

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

func TestDeprecatedRouteIsAnsweredGoneFromSunsetOn(t *testing.T) {
	o := newOverloadRev(t, "r1:s1")
	o.policy(`{"name":"old","type":"deprecation","config":{"deprecated_at":"2029-07-01T00:00:00Z",
		"sunset_at":"2030-01-01T12:00:00Z","successor":"https://api.example.com/v2"}}`, "r1")
	clock := newOverloadClock() // 2030-01-01T00:00:00Z
	set := o.compile(NewState(), clock)

	want := http.Header{
		"Deprecation": {"@1877558400"},
		"Sunset":      {"Tue, 01 Jan 2030 12:00:00 GMT"},
		"Link":        {`<https://api.example.com/v2>; rel="successor-version"`},
	}
	check := func(q *overloadReq) {
		t.Helper()
		for k, v := range want {
			if got := q.w.Header()[k]; len(got) != 1 || got[0] != v[0] {
				t.Errorf("%s: %q; want %q", k, got, v)
			}
		}
	}
	q := runOverload(t, set, "r1")
	q.wantAdmitted(t)
	check(q)

	clock.Advance(12*time.Hour - time.Nanosecond)
	runOverload(t, set, "r1").wantAdmitted(t)
	clock.Advance(time.Nanosecond)
	q = runOverload(t, set, "r1")
	var e *gatehouse.Error
	if !errors.As(q.err, &e) || e.Code != gatehouse.EGONE {
		t.Fatalf("at sunset: %v; want a gone error", q.err)
	}
	if e.Message != "This API was retired on Tue, 01 Jan 2030 12:00:00 GMT." || e.Successor != "https://api.example.com/v2" {
		t.Fatalf("gone: %q, successor %q", e.Message, e.Successor)
	}
	check(q)
}

func TestDeprecationWithoutDateIsDatedByThePolicysCreation(t *testing.T) {
	for _, tc := range []struct {
		desc    string
		created time.Time
		want    string
	}{
		{"creation known", time.Date(2028, 3, 4, 5, 6, 7, 0, time.UTC), "@1835759167"},
		{"creation unknown", time.Time{}, "@0"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			o := newOverloadRev(t, "r1:s1")
			p := o.policy(`{"name":"old","type":"deprecation","config":{}}`, "r1")
			p.CreatedAt = tc.created
			q := runOverload(t, o.compile(NewState(), newOverloadClock()), "r1")
			q.wantAdmitted(t)
			h := q.w.Header()
			if got := h.Get("Deprecation"); got != tc.want {
				t.Fatalf("Deprecation %q; want %q", got, tc.want)
			}
			if _, ok := h["Sunset"]; ok {
				t.Fatalf("Sunset %q without a sunset_at", h["Sunset"])
			}
			if _, ok := h["Link"]; ok {
				t.Fatalf("Link %q without a successor", h["Link"])
			}
		})
	}
}

func TestSeveralDeprecationsMergeToTheEarliestDates(t *testing.T) {
	o := newOverloadRev(t, "r1:s1")
	o.policy(`{"name":"a","type":"deprecation","config":{"deprecated_at":"2029-07-01T00:00:00Z",
		"sunset_at":"2031-01-01T00:00:00Z","successor":"https://a.example.com/"}}`, "r1")
	o.policy(`{"name":"b","type":"deprecation","config":{"deprecated_at":"2028-01-01T00:00:00Z",
		"sunset_at":"2030-06-01T00:00:00Z","successor":"https://b.example.com/"}}`, "r1")
	clock := newOverloadClock()
	q := runOverload(t, o.compile(NewState(), clock), "r1")
	q.wantAdmitted(t)
	h := q.w.Header()
	if h.Get("Deprecation") != "@1830297600" || h.Get("Sunset") != "Sat, 01 Jun 2030 00:00:00 GMT" ||
		h.Get("Link") != `<https://b.example.com/>; rel="successor-version"` {
		t.Fatalf("Deprecation %q, Sunset %q, Link %q; want b's dates and successor", h.Get("Deprecation"), h.Get("Sunset"), h.Get("Link"))
	}
}
