package serve

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// TestNoByteAfterTheFramingIsLostReachesNetHTTP: once framing can no
// longer tell where a request ends, net/http gets the bytes it needs to
// fail that request as it would, and then EOF: never a request after it,
// whether net/http refuses the lost one or (where framing and net/http
// disagree, as on a length framing cannot hold) reads it.
func TestNoByteAfterTheFramingIsLostReachesNetHTTP(t *testing.T) {
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, tc := range []struct{ desc, lost string }{
		{"a header line without a colon", "GET / HTTP/1.1\r\nHost x\r\n"},
		{"a malformed content-length", "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n"},
		{"a content-length framing cannot hold", "POST / HTTP/1.1\r\nContent-Length: 9000000000000000000\r\n\r\n"},
		{"an unknown transfer coding", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"},
		{"a malformed chunk size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz;ext\r\n"},
		{"a chunk size framing cannot hold", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n"},
		{"chunk data not followed by CRLF", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			client, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			sc, err := listener{l}.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			sc.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(client, tc.lost+smuggled); err != nil {
				t.Fatal(err)
			}
			client.(*net.TCPConn).CloseWrite()
			got, err := io.ReadAll(sc)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, []byte(tc.lost)) {
				t.Fatalf("net/http would read %q; want %q and EOF", got, tc.lost)
			}
		})
	}
}
