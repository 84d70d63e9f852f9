//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd || solaris)

package forward

import "net"

// canPeek is false: nothing here peeks at a socket, so newTransport gives
// http upstreams net/http's Transport, whose reader on every idle
// connection notices what the upstream sends unasked.
const canPeek = false

// connAlive cannot prove an idle connection clean here, so none is
// reused: bytes waiting on it would be read as another request's
// response.
func connAlive(net.Conn) bool { return false }
