package audit

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestUpstreamMessageFindsTheCommonFields(t *testing.T) {
	for _, tc := range []struct{ ct, body, want string }{
		{"application/json", `{"message":"a"}`, "a"},
		{"application/json", `{"error":"b"}`, "b"},
		{"application/json", `{"error":{"message":"c"}}`, "c"},
		{"application/json", `{"errors":[{"message":"d"}]}`, "d"},
		{"application/json", `{"errors":["e"]}`, "e"},
		{"application/json", `{"error":"invalid_grant","error_description":"f"}`, "f"},
		{"application/json", `{"detail":"g","title":"Bad"}`, "g"},
		{"application/json", `{"title":"h"}`, "h"},
		{"application/hal+json; charset=utf-8", `{"message":"  i \n j "}`, "i j"},
		{"application/json", `{"message":42,"msg":"k"}`, "k"},
		{"application/json", `"bare"`, ""},
		{"application/json", `{"message":"` + strings.Repeat("x", MaxMessage+1) + `"}`, ""},
		{"application/json", `{"a":{"b":{"message":"deep"}}}`, ""},
		{"application/json", `{not json`, ""},
		{"text/plain; charset=utf-8", "Not found\n", "Not found"},
		{"text/plain", strings.Repeat("x", MaxMessage+1), ""},
		{"Text/Plain; charset", "read as every Content-Type is", "read as every Content-Type is"},
		{"text/html", "<h1>Not found</h1>", ""},
		{"", "plain", ""},
	} {
		if got := UpstreamMessage(tc.ct, []byte(tc.body)); got != tc.want {
			t.Errorf("%s %q: got %q; want %q", tc.ct, tc.body, got, tc.want)
		}
	}
}

func FuzzUpstreamErrorMessage(f *testing.F) {
	f.Add("application/json", []byte(`{"error":{"message":"x"}}`))
	f.Add("application/json", []byte(`{"errors":[{"message":"\u0000y\u202e"}]}`))
	f.Add("text/plain", []byte("a\x00b\xffc"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		m := UpstreamMessage(ct, body)
		if len(m) > MaxMessage || !utf8.ValidString(m) || strings.TrimSpace(m) != m {
			t.Fatalf("message %q: over %d bytes, invalid UTF-8 or untrimmed", m, MaxMessage)
		}
		for _, r := range m {
			if !unicode.IsPrint(r) && r != ' ' {
				t.Fatalf("message %q holds %U", m, r)
			}
		}
	})
}
