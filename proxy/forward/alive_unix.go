//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd || solaris

package forward

import (
	"net"
	"syscall"
)

// canPeek is true: connAlive can look at a socket without reading it.
const canPeek = true

// connAlive reports whether an idle connection is still usable: the
// upstream has not closed it (FIN or RST) nor sent anything unasked. It
// peeks at the socket without blocking, one system call. net/http learns
// the same from a read it keeps pending on every idle connection; the
// h1Transport keeps no goroutine per connection, so it asks when it
// matters: every time an idle connection is taken for a request.
func connAlive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		// Nothing to read is the one good answer; otherwise it is a FIN
		// (0 bytes), an error, or bytes nobody asked for.
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true // never wait for readiness
	})
	return err == nil && alive
}
