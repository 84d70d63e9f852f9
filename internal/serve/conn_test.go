package serve

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"strings"
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
		// 2^63: one digit past the last size that fits in 63 bits.
		{"a chunk size that overflows", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8000000000000000\r\n"},
		{"a chunk size that overflows after leading zeros", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n08000000000000000\r\n"},
		{"chunk data not followed by CRLF", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			client, sc := connPair(t, listener{})
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

// TestAPanicInTheFollowerCutsTheStreamAsALossDoes: should framing ever
// panic (here: a body length gone negative, as the 63-bit overflow once
// made it), the read that panicked returns no byte of what it read to
// net/http, nor any after, the panic is logged once at error level, and
// the process lives on.
func TestAPanicInTheFollowerCutsTheStreamAsALossDoes(t *testing.T) {
	var logged bytes.Buffer
	client, sc := connPair(t, listener{log: slog.New(slog.NewTextHandler(&logged, nil))})
	sc.SetDeadline(time.Now().Add(10 * time.Second))
	sc.(*conn).frames = framing{state: fChunkData, remain: -1 << 62, headEnded: true}
	if _, err := io.WriteString(client, "abc\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	client.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(sc)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("net/http would read %q; want EOF", got)
	}
	if n := strings.Count(logged.String(), "level=ERROR"); n != 1 {
		t.Fatalf("logged %d errors; want 1:\n%s", n, logged.String())
	}
}

// connPair returns a client connection and its server end as l (with a
// loopback listener of its own) accepts it; all close with the test.
func connPair(t *testing.T, l listener) (client, server net.Conn) {
	t.Helper()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tcp.Close() })
	client, err = net.Dial("tcp", tcp.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	l.Listener = tcp
	server, err = l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}
