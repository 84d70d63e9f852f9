package h1

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

const testMax = 8 << 10

// TestParseHeadRefusesWithTheContractsCode: every refusal, by the code
// (hence the status) the contract gives it.
func TestParseHeadRefusesWithTheContractsCode(t *testing.T) {
	long := strings.Repeat("a", testMax)
	tests := []struct {
		name, head string
		code       gatehouse.Code
	}{
		// 400: the request line.
		{"request line without a target is 400", "GET HTTP/1.1\r\nHost: a\r\n\r\n", gatehouse.EINVALID},
		{"CONNECT with an empty target is 400", "CONNECT  HTTP/1.1\r\nHost: a\r\n\r\n", gatehouse.EINVALID},
		{"two spaces after the method is 400", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", gatehouse.EINVALID},
		{"two spaces before the version is 400", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", gatehouse.EINVALID},
		{"tab as separator is 400", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", gatehouse.EINVALID},
		{"method with a non-token byte is 400", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", gatehouse.EINVALID},
		{"empty method is 400", " / HTTP/1.1\r\nHost: a\r\n\r\n", gatehouse.EINVALID},
		{"space inside the target is 400", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", gatehouse.EINVALID},
		{"NUL in the target is 400", "GET /a\x00b HTTP/1.1\r\nHost: a\r\n\r\n", gatehouse.EINVALID},
		{"DEL in the target is 400", "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", gatehouse.EINVALID},
		{"fragment in the target is 400", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", gatehouse.EINVALID},
		{"broken percent-encoding in the path is 400", "GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n", gatehouse.EINVALID},
		{"truncated percent-encoding in the path is 400", "GET /a%4 HTTP/1.1\r\nHost: a\r\n\r\n", gatehouse.EINVALID},
		{"asterisk target for GET is 400", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", gatehouse.EINVALID},
		{"relative target is 400", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", gatehouse.EINVALID},
		{"absolute-form with another scheme is 400", "GET ftp://a/b HTTP/1.1\r\nHost: a\r\n\r\n", gatehouse.EINVALID},
		{"absolute-form without a host is 400", "GET http:///b HTTP/1.1\r\nHost: a\r\n\r\n", gatehouse.EINVALID},
		{"absolute-form with userinfo is 400", "GET http://u@a/b HTTP/1.1\r\nHost: a\r\n\r\n", gatehouse.EINVALID},
		{"CONNECT to a bad authority is 400", "CONNECT a..b:443 HTTP/1.1\r\nHost: a\r\n\r\n", gatehouse.EINVALID},
		{"HTTP/0.9 request line is 400", "GET /\r\n\r\n", gatehouse.EINVALID},
		{"lower-case version is 400", "GET / http/1.1\r\nHost: a\r\n\r\n", gatehouse.EINVALID},
		{"two-digit minor version is 400", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", gatehouse.EINVALID},
		{"text after the version is 400", "GET / HTTP/1.1 x\r\nHost: a\r\n\r\n", gatehouse.EINVALID},
		{"CR inside the request line is 400", "GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", gatehouse.EINVALID},
		{"lone CR before the request line is 400", "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", gatehouse.EINVALID},
		// 400: the fields.
		{"obsolete line folding is 400", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", gatehouse.EINVALID},
		{"folded Content-Length is 400", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n 5\r\n\r\nhello", gatehouse.EINVALID},
		{"whitespace before the first field is 400", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", gatehouse.EINVALID},
		{"space before the colon is 400", "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", gatehouse.EINVALID},
		{"field without a colon is 400", "GET / HTTP/1.1\r\nHost: a\r\nX\r\n\r\n", gatehouse.EINVALID},
		{"field with an empty name is 400", "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", gatehouse.EINVALID},
		{"NUL in a value is 400", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", gatehouse.EINVALID},
		{"CR inside a value is 400", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", gatehouse.EINVALID},
		{"DEL in a value is 400", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", gatehouse.EINVALID},
		{"CR not followed by LF at the head's end is 400", "GET / HTTP/1.1\r\nHost: a\r\n\rX", gatehouse.EINVALID},
		{"missing Host on HTTP/1.1 is 400", "GET / HTTP/1.1\r\nX: 1\r\n\r\n", gatehouse.EINVALID},
		{"missing Host on HTTP/1.1 with absolute-form is 400", "GET http://a/ HTTP/1.1\r\n\r\n", gatehouse.EINVALID},
		{"two Host fields are 400", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", gatehouse.EINVALID},
		{"invalid Host is 400", "GET / HTTP/1.1\r\nHost: a..b\r\n\r\n", gatehouse.EINVALID},
		{"Host with a port out of range is 400", "GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n", gatehouse.EINVALID},
		// 400: framing.
		{"signed Content-Length is 400", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", gatehouse.EINVALID},
		{"negative Content-Length is 400", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n", gatehouse.EINVALID},
		{"Content-Length list is 400", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello", gatehouse.EINVALID},
		{"Content-Length with inner space is 400", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", gatehouse.EINVALID},
		{"empty Content-Length is 400", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", gatehouse.EINVALID},
		{"hexadecimal Content-Length is 400", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", gatehouse.EINVALID},
		{"Content-Length past 2^63-1 is 400", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n", gatehouse.EINVALID},
		{"two different Content-Lengths are 400", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", gatehouse.EINVALID},
		{"Content-Lengths equal in number but not in bytes are 400", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 05\r\n\r\n", gatehouse.EINVALID},
		{"Transfer-Encoding with Content-Length is 400", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", gatehouse.EINVALID},
		{"unknown Transfer-Encoding with Content-Length is 400", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\n", gatehouse.EINVALID},
		{"Transfer-Encoding on HTTP/1.0 is 400", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", gatehouse.EINVALID},
		// net/http's fixTrailer: framing fields cannot follow a chunked body,
		// and it says so before it looks at Expect.
		{"chunked body announcing a Content-Length trailer is 400", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum, content-length\r\n\r\n", gatehouse.EINVALID},
		{"chunked body announcing a Transfer-Encoding trailer is 400", "POST / HTTP/1.1\r\nHost: a\r\nTrailer: X-Sum\r\nTrailer: ,TRANSFER-ENCODING\t\r\nTransfer-Encoding: chunked\r\n\r\n", gatehouse.EINVALID},
		{"chunked body announcing a Trailer trailer is 400", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: Trailer\r\n\r\n", gatehouse.EINVALID},
		{"framing trailer with an unknown expectation is 400", "POST / HTTP/1.1\r\nHost: a\r\nExpect: foo\r\nTransfer-Encoding: chunked\r\nTrailer: Content-Length\r\n\r\n", gatehouse.EINVALID},
		// 431.
		{"head longer than the limit is 431", "GET /" + long + " HTTP/1.1\r\nHost: a\r\n\r\n", gatehouse.EHEADERSTOOLARGE},
		{"field longer than the limit is 431", "GET / HTTP/1.1\r\nHost: a\r\nX: " + long, gatehouse.EHEADERSTOOLARGE},
		{"more than MaxFields fields is 431", "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: 1\r\n", MaxFields) + "\r\n", gatehouse.EHEADERSTOOLARGE},
		// 501.
		{"Transfer-Encoding other than chunked is 501", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", gatehouse.ENOTIMPLEMENTED},
		{"Transfer-Encoding xchunked is 501", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", gatehouse.ENOTIMPLEMENTED},
		{"Transfer-Encoding chunked then identity is 501", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", gatehouse.ENOTIMPLEMENTED},
		{"Transfer-Encoding gzip then chunked is 501", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", gatehouse.ENOTIMPLEMENTED},
		{"two Transfer-Encoding fields are 501", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", gatehouse.ENOTIMPLEMENTED},
		{"empty Transfer-Encoding is 501", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", gatehouse.ENOTIMPLEMENTED},
		// 417.
		{"unknown expectation is 417", "POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\n", gatehouse.EEXPECTATION},
		{"expectation of only commas is 417", "POST / HTTP/1.1\r\nHost: a\r\nExpect: ,\r\n\r\n", gatehouse.EEXPECTATION},
		{"unknown expectation beside 100-continue is 417", "POST / HTTP/1.1\r\nHost: a\r\nExpect: foo, 100-continue\r\n\r\n", gatehouse.EEXPECTATION},
		// 505.
		{"HTTP/2.0 request line is 505", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", gatehouse.EVERSION},
		{"HTTP/0.9 with a version is 505", "GET / HTTP/0.9\r\n\r\n", gatehouse.EVERSION},
		{"HTTP/2 preface is 505", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", gatehouse.EVERSION},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Head
			n, err := ParseHead([]byte(tt.head), &h, testMax)
			var ge *gatehouse.Error
			if !errors.As(err, &ge) {
				t.Fatalf("ParseHead = %d, %v; want a *gatehouse.Error %s", n, err, tt.code)
			}
			if ge.Code != tt.code {
				t.Fatalf("code %s (%s); want %s", ge.Code, ge.Message, tt.code)
			}
		})
	}
}

// TestParseHeadAcceptsWellFormedHeads: the shapes accepted, and what the
// head says about them.
func TestParseHeadAcceptsWellFormedHeads(t *testing.T) {
	type want struct {
		method, target, host string
		minor                int
		fields               int
		chunked              bool
		length               int64
		close, expect, upg   bool
		path, query          string
	}
	tests := []struct {
		name, head string
		want       want
	}{
		{"plain GET", "GET /a?b=c HTTP/1.1\r\nHost: api.example.com\r\nAccept: */*\r\n\r\n",
			want{method: "GET", target: "/a?b=c", host: "api.example.com", minor: 1, fields: 2, path: "/a", query: "b=c"}},
		{"leading empty lines are skipped", "\r\n\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
			want{method: "GET", target: "/", host: "a", minor: 1, fields: 1, path: "/"}},
		{"a later HTTP/1.x is read as 1.1 (RFC 9110 §2.5)", "GET / HTTP/1.2\r\nHost: a\r\n\r\n",
			want{method: "GET", target: "/", host: "a", minor: 1, fields: 1, path: "/"}},
		{"bare LF line endings are accepted as net/http does", "GET / HTTP/1.1\nHost: a\nX: 1\n\n",
			want{method: "GET", target: "/", host: "a", minor: 1, fields: 2, path: "/"}},
		{"Content-Length frames the body", "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n",
			want{method: "POST", target: "/p", host: "a", minor: 1, fields: 2, length: 12, path: "/p"}},
		{"identical Content-Length duplicates are one length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length:  5 \r\n\r\n",
			want{method: "POST", target: "/", host: "a", minor: 1, fields: 3, length: 5, path: "/"}},
		{"Content-Length with leading zeros", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n",
			want{method: "POST", target: "/", host: "a", minor: 1, fields: 2, length: 7, path: "/"}},
		{"chunked in any case frames the body", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ChunKed\r\n\r\n",
			want{method: "POST", target: "/", host: "a", minor: 1, fields: 2, chunked: true, path: "/"}},
		{"chunked with trailing whitespace frames the body", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked \r\n\r\n",
			want{method: "POST", target: "/", host: "a", minor: 1, fields: 2, chunked: true, path: "/"}},
		{"Connection close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n",
			want{method: "GET", target: "/", host: "a", minor: 1, fields: 2, close: true, path: "/"}},
		{"HTTP/1.0 closes by default", "GET / HTTP/1.0\r\n\r\n",
			want{method: "GET", target: "/", minor: 0, close: true, path: "/"}},
		{"HTTP/1.0 keep-alive keeps the connection", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: a\r\n\r\n",
			want{method: "GET", target: "/", host: "a", minor: 0, fields: 2, path: "/"}},
		{"Expect 100-continue", "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
			want{method: "PUT", target: "/", host: "a", minor: 1, fields: 3, length: 3, expect: true, path: "/"}},
		{"Expect 100-continue on HTTP/1.0 is ignored", "PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
			want{method: "PUT", target: "/", minor: 0, fields: 2, length: 3, close: true, path: "/"}},
		{"empty Expect is no expectation", "GET / HTTP/1.1\r\nHost: a\r\nExpect:\r\n\r\n",
			want{method: "GET", target: "/", host: "a", minor: 1, fields: 2, path: "/"}},
		{"Connection upgrade", "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
			want{method: "GET", target: "/ws", host: "a", minor: 1, fields: 3, upg: true, path: "/ws"}},
		{"Connection upgrade on HTTP/1.0 is ignored", "GET /ws HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
			want{method: "GET", target: "/ws", minor: 0, fields: 2, close: true, path: "/ws"}},
		{"absolute-form takes the target's host", "GET http://B.example:8080/x?y HTTP/1.1\r\nHost: a\r\n\r\n",
			want{method: "GET", target: "http://B.example:8080/x?y", host: "B.example:8080", minor: 1, fields: 1, path: "/x", query: "y"}},
		{"absolute-form without a path is /", "GET HTTPS://b?q HTTP/1.1\r\nHost: a\r\n\r\n",
			want{method: "GET", target: "HTTPS://b?q", host: "b", minor: 1, fields: 1, path: "/", query: "q"}},
		{"OPTIONS asterisk", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
			want{method: "OPTIONS", target: "*", host: "a", minor: 1, fields: 1, path: "*"}},
		{"CONNECT authority-form takes the target's host", "CONNECT b.example:443 HTTP/1.1\r\nHost: b.example:443\r\n\r\n",
			want{method: "CONNECT", target: "b.example:443", host: "b.example:443", minor: 1, fields: 1, path: "b.example:443"}},
		{"unknown token method is parsed (501 is the engine's)", "BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n",
			want{method: "BREW", target: "/pot", host: "a", minor: 1, fields: 1, path: "/pot"}},
		{"empty Host on HTTP/1.1", "GET / HTTP/1.1\r\nHost:\r\n\r\n",
			want{method: "GET", target: "/", host: "", minor: 1, fields: 1, path: "/"}},
		{"query keeps what net/http keeps", "GET /a?%zz|{} HTTP/1.1\r\nHost: a\r\n\r\n",
			want{method: "GET", target: "/a?%zz|{}", host: "a", minor: 1, fields: 1, path: "/a", query: "%zz|{}"}},
		{"chunked body announcing trailers", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum, Content-Lengths\r\n\r\n",
			want{method: "POST", target: "/", host: "a", minor: 1, fields: 3, chunked: true, path: "/"}},
		{"Trailer without a chunked body is a field like any", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nTrailer: Content-Length\r\n\r\n",
			want{method: "POST", target: "/", host: "a", minor: 1, fields: 3, path: "/"}},
		{"obs-text in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n",
			want{method: "GET", target: "/", host: "a", minor: 1, fields: 2, path: "/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := []byte(tt.head + "NEXT")
			var h Head
			n, err := ParseHead(b, &h, testMax)
			if err != nil {
				t.Fatalf("ParseHead: %v", err)
			}
			if n != len(tt.head) {
				t.Errorf("length %d; want %d", n, len(tt.head))
			}
			path, query := h.OriginForm()
			got := want{h.Method, string(h.Target), string(h.Host), h.Minor, len(h.Fields), h.Chunked,
				h.ContentLength, h.Close, h.Expect100, h.Upgrade, string(path), string(query)}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseHeadKeepsFieldsInOrderAsSent(t *testing.T) {
	var h Head
	head := "GET / HTTP/1.1\r\nhost: a\r\nX-A:  1 \r\nx-a:2\r\nCookie: c=1; d=2\r\n\r\n"
	if _, err := ParseHead([]byte(head), &h, testMax); err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"host", "a"}, {"X-A", "1"}, {"x-a", "2"}, {"Cookie", "c=1; d=2"}}
	if len(h.Fields) != len(want) {
		t.Fatalf("%d fields; want %d", len(h.Fields), len(want))
	}
	for i, f := range h.Fields {
		if string(f.Name) != want[i][0] || string(f.Value) != want[i][1] {
			t.Errorf("field %d = %q: %q; want %q: %q", i, f.Name, f.Value, want[i][0], want[i][1])
		}
	}
}

// TestParseHeadWaitsForTheWholeHead: every proper prefix of a head is
// incomplete, the whole head is not.
func TestParseHeadWaitsForTheWholeHead(t *testing.T) {
	heads := []string{
		"GET /a HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n",
		"\r\nPOST / HTTP/1.0\nContent-Length: 1\n\n",
	}
	for _, head := range heads {
		var h Head
		for i := 0; i < len(head); i++ {
			if n, err := ParseHead([]byte(head[:i]), &h, testMax); err != ErrIncomplete {
				t.Fatalf("ParseHead(%q) = %d, %v; want ErrIncomplete", head[:i], n, err)
			}
		}
		if n, err := ParseHead([]byte(head), &h, testMax); err != nil || n != len(head) {
			t.Fatalf("ParseHead(%q) = %d, %v; want %d, nil", head, n, err, len(head))
		}
	}
}

// TestParseHeadRefusesEarly: a malformed start is refused before the
// rest of the head arrives, so a client cannot hold the connection with it.
func TestParseHeadRefusesEarly(t *testing.T) {
	for _, partial := range []string{"G\x00", "GET /a\x01", "GET / HTTP/1.1\r\nHost: a\r\n x", "GET / HTTP/1.1\r\nX\x00", "GET / HTTP/1.1x"} {
		var h Head
		if _, err := ParseHead([]byte(partial), &h, testMax); err == nil || err == ErrIncomplete {
			t.Errorf("ParseHead(%q) = %v; want a refusal", partial, err)
		}
	}
}

func TestParseHeadAcceptsMaxFieldsFields(t *testing.T) {
	head := "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: 1\r\n", MaxFields-1) + "\r\n"
	var h Head
	if _, err := ParseHead([]byte(head), &h, testMax); err != nil || len(h.Fields) != MaxFields {
		t.Fatalf("ParseHead: %d fields, %v; want %d, nil", len(h.Fields), err, MaxFields)
	}
}

func TestParseHeadAcceptsAHeadOfExactlyTheLimit(t *testing.T) {
	head := "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	var h Head
	if n, err := ParseHead([]byte(head+"GET"), &h, len(head)); err != nil || n != len(head) {
		t.Fatalf("ParseHead = %d, %v; want %d, nil", n, err, len(head))
	}
	if _, err := ParseHead([]byte(head), &h, len(head)-1); err == nil {
		t.Fatal("a head one byte over the limit was accepted")
	}
}

var typicalGET = []byte("GET /api/v1/orders/42?expand=items HTTP/1.1\r\n" +
	"Host: api.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\r\n" +
	"Accept: application/json\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Accept-Language: en-GB,en;q=0.9\r\n" +
	"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc\r\n" +
	"Connection: keep-alive\r\n" +
	"X-Request-Id: 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\r\n" +
	"\r\n")

func TestParseHeadAllocatesNothingOnceItsFieldsHaveGrown(t *testing.T) {
	var h Head
	post := []byte("POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
	for _, b := range [][]byte{typicalGET, post} {
		if _, err := ParseHead(b, &h, testMax); err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := ParseHead(b, &h, testMax); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%.1f allocations per head; want 0", allocs)
		}
	}
}

func BenchmarkParseHead(b *testing.B) {
	var h Head
	b.ReportAllocs()
	b.SetBytes(int64(len(typicalGET)))
	for b.Loop() {
		if _, err := ParseHead(typicalGET, &h, testMax); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNetHTTPReadRequest is the same head through http.ReadRequest,
// for comparison.
func BenchmarkNetHTTPReadRequest(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(typicalGET)))
	r := bytes.NewReader(typicalGET)
	br := bufio.NewReader(r)
	for b.Loop() {
		r.Reset(typicalGET)
		br.Reset(r)
		if _, err := http.ReadRequest(br); err != nil {
			b.Fatal(err)
		}
	}
}
