package httpx

import (
	"slices"
	"testing"
)

func TestFieldListYieldsTheTrimmedElementsOfEveryValue(t *testing.T) {
	for _, tc := range []struct {
		desc   string
		values []string
		want   []string
	}{
		{desc: "no field", values: nil, want: nil},
		{desc: "one element", values: []string{"close"}, want: []string{"close"}},
		{desc: "optional whitespace around elements", values: []string{" Origin ,\tAccept-Encoding\t"}, want: []string{"Origin", "Accept-Encoding"}},
		{desc: "empty elements skipped (RFC 9110 §5.6.1)", values: []string{",, a ,,b,", " , "}, want: []string{"a", "b"}},
		{desc: "several field lines in order", values: []string{"a, b", "c"}, want: []string{"a", "b", "c"}},
		{desc: "only space and tab are whitespace", values: []string{"\va\v"}, want: []string{"\va\v"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got := slices.Collect(FieldList(tc.values))
			if !slices.Equal(got, tc.want) {
				t.Errorf("FieldList(%q) = %q; want %q", tc.values, got, tc.want)
			}
		})
	}
}

func TestFieldListStopsWhenTheLoopBreaks(t *testing.T) {
	var got []string
	for e := range FieldList([]string{"a, b", "c"}) {
		got = append(got, e)
		if e == "b" {
			break
		}
	}
	if !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("got %q; want a, b", got)
	}
}

func TestHasTokenMatchesAnElementCaseInsensitivelyWithoutAllocating(t *testing.T) {
	connection := []string{"keep-alive, X-Secret", " Upgrade"}
	for _, tc := range []struct {
		token string
		want  bool
	}{
		{"x-secret", true}, {"upgrade", true}, {"Keep-Alive", true}, {"close", false}, {"X", false},
	} {
		if got := HasToken(connection, tc.token); got != tc.want {
			t.Errorf("HasToken(%q) = %v; want %v", tc.token, got, tc.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { HasToken(connection, "close") }); n != 0 {
		t.Errorf("HasToken allocates %v times", n)
	}
}
