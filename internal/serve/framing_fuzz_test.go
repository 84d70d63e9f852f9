package serve

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"
)

// FuzzFramingIsSplitInvariant: how the client's bytes arrive in reads must
// not change what framing finds: the same heads, the same refusal at the
// same byte.
func FuzzFramingIsSplitInvariant(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x\r\nabc\r\n0\r\nT: 1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"\r\nPOST / HTTP/1.1\nContent-Length:  007 \n\n1234567",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8000000000000000\r\nabc",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n08000000000000000\r\nabc",
	} {
		f.Add([]byte(seed), uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		var whole framing
		wantHeads, wantCut, wantErr := whole.feed(data)
		var parts framing
		heads, cut, at := 0, 0, 0
		var err error
		size := int(step%16) + 1
		for at < len(data) && err == nil {
			end := min(at+size, len(data))
			var h int
			h, cut, err = parts.feed(data[at:end])
			heads += h
			if err != nil {
				cut += at
			}
			at = end
		}
		if heads != wantHeads || (err == nil) != (wantErr == nil) || err != nil && cut != wantCut {
			t.Fatalf("in reads of %d: heads %d, refused %v at %d; whole: heads %d, refused %v at %d",
				size, heads, err, cut, wantHeads, wantErr, wantCut)
		}
	})
}

// FuzzFramingAgreesWithNetHTTP: whenever framing goes on following a
// connection past a request that net/http reads whole, it must see that
// request end exactly where net/http does; otherwise it would check the
// wrong bytes as the next head. Refusing or losing track is always safe
// (no byte after it reaches net/http), and so is following a request that
// net/http fails (net/http closes the connection after it).
func FuzzFramingAgreesWithNetHTTP(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length:  005 \r\n\r\nhelloGET / HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n3;a=b\r\nabc\r\n0\r\nT: 1\r\n  2\r\n\r\nGET / HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length:\r\n 5\r\n\r\nhello",
		"POST / HTTP/1.0\nContent-Length: 2\nX: a\n\nokGET",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8000000000000000\r\nabc\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n08000000000000000\r\nabc\r\n0\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.NewReader(data)
		br := bufio.NewReader(in)
		req, err := http.ReadRequest(br)
		if err != nil || req.ProtoMajor != 1 { // net/http's server refuses other versions
			return
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return
		}
		end := len(data) - in.Len() - br.Buffered()
		var fr framing
		heads, _, stop := fr.feed(data[:end])
		if stop != nil {
			return
		}
		if heads != 1 || fr.state != fStart {
			t.Fatalf("net/http read a request of %d bytes (length %d, coding %q); framing: %d heads, state %d at its end",
				end, req.ContentLength, req.TransferEncoding, heads, fr.state)
		}
	})
}
