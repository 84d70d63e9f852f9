//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd || solaris)

package forward

import "net"

// canPeek is false: nothing here peeks at a socket, so newTransport gives
// http upstreams net/http's Transport, whose reader on every idle
// connection notices what the upstream sends unasked.
const canPeek = false

// peeker cannot prove an idle connection clean here, so none is reused:
// bytes waiting on it would be read as another request's response.
type peeker struct{}

func newPeeker(net.Conn) *peeker { return nil }

func (*peeker) alive() bool { return false }
