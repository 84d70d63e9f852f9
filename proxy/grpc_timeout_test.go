package proxy

import (
	"math"
	"regexp"
	"strconv"
	"testing"
	"time"
)

func TestParseGRPCTimeoutReadsGRPCsGrammarOnly(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1H", time.Hour, true},
		{"2M", 2 * time.Minute, true},
		{"30S", 30 * time.Second, true},
		{"250m", 250 * time.Millisecond, true},
		{"7u", 7 * time.Microsecond, true},
		{"99999999n", 99999999 * time.Nanosecond, true},
		{"0S", 0, true},
		{"00000001S", time.Second, true},
		{"99999999H", math.MaxInt64, true}, // past Duration's range: the longest
		{"", 0, false},
		{"S", 0, false},
		{"100", 0, false},
		{"1s", 0, false},
		{"1.5S", 0, false},
		{"-1S", 0, false},
		{"+1S", 0, false},
		{" 1S", 0, false},
		{"123456789n", 0, false}, // nine digits
		{"1SS", 0, false},
	}
	for _, tc := range tests {
		got, ok := parseGRPCTimeout(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseGRPCTimeout(%q) = %v, %t; want %v, %t", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

var grpcTimeoutGrammar = regexp.MustCompile(`^([0-9]{1,8})([HMSmun])$`)

// FuzzParseGRPCTimeout: a value is taken exactly when it matches the
// grammar, as the number times its unit (or the longest duration past
// Duration's range).
func FuzzParseGRPCTimeout(f *testing.F) {
	for _, s := range []string{"1H", "100m", "99999999H", "1s", "", "12345678n", "123456789n", "0u"} {
		f.Add(s)
	}
	units := map[string]time.Duration{"H": time.Hour, "M": time.Minute, "S": time.Second, "m": time.Millisecond, "u": time.Microsecond, "n": time.Nanosecond}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseGRPCTimeout(s)
		m := grpcTimeoutGrammar.FindStringSubmatch(s)
		if ok != (m != nil) {
			t.Fatalf("parseGRPCTimeout(%q) ok = %t; the grammar says %t", s, ok, m != nil)
		}
		if !ok {
			return
		}
		n, _ := strconv.ParseInt(m[1], 10, 64)
		unit := units[m[2]]
		want := time.Duration(math.MaxInt64)
		if n <= math.MaxInt64/int64(unit) {
			want = time.Duration(n) * unit
		}
		if got != want {
			t.Fatalf("parseGRPCTimeout(%q) = %v; want %v", s, got, want)
		}
	})
}
