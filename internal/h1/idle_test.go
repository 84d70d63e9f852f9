package h1_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/h1"
)

// TestIdleConnectionsAreCheap keeps n connections idle after one
// request each and measures what they cost the process (heap and
// goroutine stacks, the client's sockets included), per connection:
// an idle connection holds its goroutine, a small read buffer and its
// request's reused structures, no response buffer.
func TestIdleConnectionsAreCheap(t *testing.T) {
	if testing.Short() {
		t.Skip("opens thousands of connections")
	}
	const n = 2000
	for _, tc := range []struct {
		engine string
		serve  func(net.Listener) io.Closer
	}{
		{"fast", func(l net.Listener) io.Closer {
			s := &h1.Server{Handler: kib, IdleTimeout: time.Minute, ReadHeaderTimeout: time.Minute}
			go s.Serve(l)
			return closer(s.Close)
		}},
		{"net/http", func(l net.Listener) io.Closer {
			s := &http.Server{Handler: kib, IdleTimeout: time.Minute, ReadHeaderTimeout: time.Minute}
			go s.Serve(l)
			return s
		}},
	} {
		t.Run(tc.engine, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer tc.serve(l).Close()
			before := inUse()
			conns := make([]net.Conn, 0, n)
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			for range n {
				c, err := net.Dial("tcp", l.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				conns = append(conns, c)
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
			}
			per := (inUse() - before) / n
			t.Logf("%s: %d bytes per idle connection", tc.engine, per)
			if tc.engine == "fast" && per > 24<<10 {
				t.Fatalf("%d bytes per idle connection; want at most 24 KiB", per)
			}
		})
	}
}

type closer func() error

func (c closer) Close() error { return c() }

func inUse() int64 {
	var m runtime.MemStats
	for range 2 {
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}
