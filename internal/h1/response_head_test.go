package h1

import (
	"bufio"
	"bytes"
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
