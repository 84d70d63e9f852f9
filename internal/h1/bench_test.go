package h1_test

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/h1"
)

// The engines end to end over loopback: one keep-alive connection, a
// GET of a 1 KiB body from a trivial handler, the client a raw socket
// reading by Content-Length (so that allocations are the server's). Run
// with -benchmem; allocs/op counts both ends, the client's none.
func BenchmarkEngineFast(b *testing.B) {
	l := listen(b)
	s := &h1.Server{Handler: kib, ReadHeaderTimeout: time.Minute, IdleTimeout: time.Minute, ReadTimeout: time.Minute}
	go s.Serve(l)
	defer s.Close()
	benchClient(b, l.Addr().String())
}

func BenchmarkEngineNetHTTP(b *testing.B) {
	l := listen(b)
	s := &http.Server{Handler: kib, ReadHeaderTimeout: time.Minute, IdleTimeout: time.Minute, ReadTimeout: time.Minute}
	go s.Serve(l)
	defer s.Close()
	benchClient(b, l.Addr().String())
}

var textPlain = []string{"text/plain"}

var body1K = bytes.Repeat([]byte("x"), 1024)

var kib = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header()["Content-Type"] = textPlain
	w.Write(body1K)
})

func listen(b *testing.B) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return l
}

func benchClient(b *testing.B, addr string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /bench/path?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench\r\nAccept: */*\r\nX-Api-Key: k\r\n\r\n")
	br := bufio.NewReaderSize(c, 8192)
	cl := []byte("Content-Length: ")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		n := -1
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				b.Fatal(err)
			}
			if len(line) == 2 {
				break
			}
			if bytes.HasPrefix(line, cl) {
				n, _ = strconv.Atoi(string(bytes.TrimSpace(line[len(cl):])))
			}
		}
		if n != 1024 {
			b.Fatalf("Content-Length %d", n)
		}
		if _, err := br.Discard(n); err != nil {
			b.Fatal(err)
		}
	}
}
