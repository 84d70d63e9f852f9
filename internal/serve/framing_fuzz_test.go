package serve

import (
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
