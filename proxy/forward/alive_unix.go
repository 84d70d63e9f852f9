//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd || solaris

package forward

import (
	"net"
	"syscall"
)

// canPeek is true: a peeker can look at a socket without reading it.
const canPeek = true

// peeker tells whether an idle connection is still usable: the upstream
// has not closed it (FIN or RST) nor sent anything unasked. It peeks at
// the socket without blocking, one system call. net/http learns the same
// from a read it keeps pending on every idle connection; the h1Transport
// keeps no goroutine per connection, so it asks when it matters: every
// time an idle connection is taken for a request. It is made once per
// connection, so that asking allocates nothing.
type peeker struct {
	rc    syscall.RawConn
	b     [1]byte
	clean bool
	peek  func(fd uintptr) bool
}

// newPeeker returns c's peeker; nil for a connection without a socket,
// which is taken as usable.
func newPeeker(c net.Conn) *peeker {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &peeker{rc: rc}
	p.peek = func(fd uintptr) bool {
		// Nothing to read is the one good answer; otherwise it is a FIN
		// (0 bytes), an error, or bytes nobody asked for.
		_, _, err := syscall.Recvfrom(int(fd), p.b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		p.clean = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true // never wait for readiness
	}
	return p
}

// alive reports whether the connection can carry another request.
func (p *peeker) alive() bool {
	if p == nil {
		return true
	}
	p.clean = false
	return p.rc.Read(p.peek) == nil && p.clean
}
