//go:build linux

package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// lateBytesUpstream is a hostile upstream over raw TCP. On its first
// connection it answers one request with first, waits for the test's
// go-ahead (late), then sends late bytes, waits until the gateway's
// kernel has them, and reports so on sent. Every later connection answers
// each request with a real response marked X-Real: yes.
type lateBytesUpstream struct {
	url  string
	late chan struct{} // the test closes it once client A has its response
	sent chan struct{} // closed once the late bytes are in the gateway's socket
}

func newLateBytesUpstream(t *testing.T, first, late string) *lateBytesUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &lateBytesUpstream{url: "http://" + ln.Addr().String(), late: make(chan struct{}), sent: make(chan struct{})}
	var wg sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for n := 0; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				go func() { <-done; c.Close() }()
				br := bufio.NewReader(c)
				if n == 0 {
					if _, err := http.ReadRequest(br); err != nil {
						return
					}
					io.WriteString(c, first)
					select {
					case <-u.late:
					case <-done:
						return
					}
					io.WriteString(c, late)
					waitUnacked(t, c)
					close(u.sent)
					io.Copy(io.Discard, br) // whatever comes next gets no answer
					return
				}
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					head := "HTTP/1.1 200 OK\r\nX-Real: yes\r\nContent-Length: 4\r\n\r\n"
					if req.Method == http.MethodHead {
						io.WriteString(c, head)
					} else {
						io.WriteString(c, head+"real")
					}
				}
			})
		}
	})
	return u
}

// waitUnacked returns once the peer has acknowledged everything written
// on c (the kernel's send queue, SIOCOUTQ, is empty): the bytes are then
// in the peer's receive queue.
func waitUnacked(t *testing.T, c net.Conn) {
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Error(err)
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var queued int32
		rc.Control(func(fd uintptr) {
			if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&queued))); e != 0 {
				queued = -1
			}
		})
		if queued == 0 {
			return
		}
		if queued < 0 {
			t.Error("SIOCOUTQ failed")
			return
		}
		time.Sleep(time.Millisecond) // an ACK on loopback: the kernel's, no signal to wait on
	}
	t.Error("the gateway never acknowledged the late bytes")
}

// TestLateUpstreamBytesNeverReachAnotherClient: an upstream that sends
// bytes after a complete response (a body longer than its Content-Length,
// its excess in a later packet; a body after a response to HEAD) must not
// have them read as the response to the next request, whoever sent it and
// whatever its method: the connection they wait on is not reused.
func TestLateUpstreamBytesNeverReachAnotherClient(t *testing.T) {
	const poison = "HTTP/1.1 200 OK\r\nX-Poison: yes\r\nContent-Length: 8\r\n\r\nPOISONED"
	excess := struct{ method, first, late string }{
		"GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", poison,
	}
	headBody := struct{ method, first, late string }{
		"HEAD", "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(poison)) + "\r\n\r\n", poison,
	}
	for _, tc := range []struct {
		desc  string
		first struct{ method, first, late string }
		next  string
	}{
		{"excess past Content-Length, then a GET", excess, "GET"},
		{"excess past Content-Length, then a HEAD", excess, "HEAD"},
		{"excess past Content-Length, then an OPTIONS", excess, "OPTIONS"},
		{"excess past Content-Length, then a TRACE", excess, "TRACE"},
		{"excess past Content-Length, then a POST", excess, "POST"},
		{"a body after a response to HEAD, then a GET", headBody, "GET"},
		{"a body after a response to HEAD, then a HEAD", headBody, "HEAD"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			up := newLateBytesUpstream(t, tc.first.first, tc.first.late)
			g := newGateway(t)
			g.route(up.url, `,"retries":0`, "")

			a := g.do(tc.first.method, "/a", nil)
			if a.status != 200 || a.header.Get("X-Poison") != "" {
				t.Fatalf("client A: got %d %v; want its own 200", a.status, a.header)
			}
			close(up.late)
			<-up.sent

			b := g.do(tc.next, "/b", nil)
			if b.header.Get("X-Poison") != "" || string(b.body) == "POISONED" {
				t.Fatalf("client B's %s got the bytes the upstream sent after A's response: %d %v %q",
					tc.next, b.status, b.header, b.body)
			}
			if b.status != 200 || b.header.Get("X-Real") != "yes" {
				t.Fatalf("client B's %s: got %d %v %q; want the upstream's real answer on a fresh connection",
					tc.next, b.status, b.header, b.body)
			}
		})
	}
}

// unconnectableAddr returns a loopback address where a connect hangs
// until its timeout: a socket listening with a backlog of 0 whose one
// queued connection is never accepted, so the kernel drops further SYNs.
func unconnectableAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(sa.(*syscall.SockaddrInet4).Port)
	// Fill the accept queue; the dial that cannot complete proves it full.
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("the kernel kept accepting connections past a full backlog")
	return ""
}
