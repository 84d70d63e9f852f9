package h1

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"testing"
)

var typicalResponse = []byte("HTTP/1.1 200 OK\r\nDate: Sat, 05 Dec 2026 06:00:00 GMT\r\nContent-Type: application/json\r\nContent-Length: 1024\r\nCache-Control: no-store\r\nX-Request-Id: 0123456789abcdef\r\n\r\n")

// TestParseResponseHeadRefusesAsSoonAsTheBytesArrive: a malformed status
// line or field is refused on its bytes alone, before the head ends, so
// that a hostile upstream cannot make the client wait for more.
func TestParseResponseHeadRefusesAsSoonAsTheBytesArrive(t *testing.T) {
	for _, in := range []string{
		"HTTP/2.0 ",
		"HTTX",
		"HTTP/1.1 2x",
		"HTTP/1.1 2000",
		"HTTP/1.1 200\rX",
		"HTTP/1.1 200 OK\r\n X",
		"HTTP/1.1 200 OK\r\nX\x00",
		"HTTP/1.1 200 OK\r\nX: a\x00",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n",
	} {
		var h ResponseHead
		if _, err := ParseResponseHead([]byte(in), &h, false); err == nil || err == ErrIncomplete {
			t.Errorf("ParseResponseHead(%q) = %v; want a refusal", in, err)
		}
	}
}

// TestParseResponseHeadAllocatesNothing: the head is parsed in place;
// the Fields slice, once grown, is reused.
func TestParseResponseHeadAllocatesNothing(t *testing.T) {
	var h ResponseHead
	ParseResponseHead(typicalResponse, &h, false)
	if n := testing.AllocsPerRun(100, func() { ParseResponseHead(typicalResponse, &h, false) }); n != 0 {
		t.Errorf("got %v allocations; want 0", n)
	}
}

func BenchmarkParseResponseHead(b *testing.B) {
	var h ResponseHead
	b.ReportAllocs()
	b.SetBytes(int64(len(typicalResponse)))
	for b.Loop() {
		if _, err := ParseResponseHead(typicalResponse, &h, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNetHTTPReadResponse is the same head through http.ReadResponse,
// for comparison.
func BenchmarkNetHTTPReadResponse(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(typicalResponse)))
	rd := bytes.NewReader(typicalResponse)
	br := bufio.NewReader(rd)
	req := &http.Request{Method: "GET"}
	for b.Loop() {
		rd.Reset(typicalResponse)
		br.Reset(rd)
		if _, err := http.ReadResponse(br, req); err != nil {
			b.Fatal(err)
		}
	}
}

// TestAResponseMayCarryFarMoreFieldsThanARequest: an upstream's valid
// answer with a Set-Cookie each for 140 cookies is parsed, though a
// request of as many lines is 431; only a hostile count is refused, and
// a connection does not keep the array such a head grew.
func TestAResponseMayCarryFarMoreFieldsThanARequest(t *testing.T) {
	for _, tc := range []struct {
		fields int
		ok     bool
	}{
		{MaxFields + 12, true},
		{MaxResponseFields, true},
		{MaxResponseFields + 1, false},
	} {
		var in bytes.Buffer
		in.WriteString("HTTP/1.1 200 OK\r\n")
		for i := range tc.fields {
			fmt.Fprintf(&in, "Set-Cookie: c%d=v\r\n", i)
		}
		in.WriteString("\r\n")
		var h ResponseHead
		_, err := ParseResponseHead(in.Bytes(), &h, false)
		if (err == nil) != tc.ok {
			t.Fatalf("%d fields: %v; want ok=%v", tc.fields, err, tc.ok)
		}
		if got := len(h.Header(in.Bytes(), in.String(), nil)["Set-Cookie"]); tc.ok && got != tc.fields {
			t.Fatalf("%d fields: %d Set-Cookie values", tc.fields, got)
		}
		ParseResponseHead(typicalResponse, &h, false)
		if tc.ok && cap(h.Fields) > MaxFields {
			t.Fatalf("after %d fields the head keeps room for %d", tc.fields, cap(h.Fields))
		}
	}
}
