// Package tunnel joins two connections, as both of gatehouse's proxies
// do once HTTP is done with them (the data plane after a 101, the egress
// listener after a CONNECT), and keeps track of the joined ones so that a
// shutdown can end them: they are hijacked connections, which an
// http.Server's Shutdown neither waits for nor closes.
package tunnel

import (
	"io"
	"sync"
)

// End is one end of a tunnel: what is read from it (R: bytes buffered
// before the join first, then the connection) and what is written to and
// closed (C). If C has CloseWrite (TCP, TLS), the end is half-closed when
// the other side has finished sending.
type End struct {
	R io.Reader
	C io.WriteCloser
}

// Join copies a's bytes to b and b's to a until both directions have
// ended, and returns how many went each way. A direction that ends
// cleanly (its reader reached EOF: that peer half-closed) half-closes the
// end it was writing to, so that the other direction can still finish,
// as a TCP peer expects; after an error, or where half-closing is
// impossible, both ends close, which ends the other direction too.
func Join(a, b End) (aToB, bToA int64) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		n, err := io.Copy(a.C, b.R)
		bToA = n
		endOfStream(a.C, err, b.C)
	}()
	n, err := io.Copy(b.C, a.R)
	aToB = n
	endOfStream(b.C, err, a.C)
	<-done
	return aToB, bToA
}

// endOfStream passes one direction's end on to the end it wrote to.
func endOfStream(to io.WriteCloser, err error, from io.Closer) {
	if err == nil {
		if cw, ok := to.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			return
		}
	}
	to.Close()
	from.Close()
}

// Set is the tunnels open on a server. The zero value is ready to use.
type Set struct {
	mu      sync.Mutex
	open    map[io.Closer]struct{}
	tunnels int // Adds not yet Removed, until Close
	closed  bool
}

// Add registers a tunnel's connections for Close; false if Close has
// begun (the caller then closes them itself). Each Add that succeeds is
// one tunnel, for Open, until the Remove of the same connections.
func (s *Set) Add(conns ...io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.open == nil {
		s.open = map[io.Closer]struct{}{}
	}
	for _, c := range conns {
		s.open[c] = struct{}{}
	}
	s.tunnels++
	return true
}

// Remove forgets connections that closed: one tunnel's, as Add was given.
func (s *Set) Remove(conns ...io.Closer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(conns) > 0 {
		if _, ok := s.open[conns[0]]; ok {
			s.tunnels-- // not yet forgotten by Close
		}
	}
	for _, c := range conns {
		delete(s.open, c)
	}
}

// Open returns how many tunnels are registered: a shutdown waits until a
// server's only requests in flight are these (serve.Server.Drain).
func (s *Set) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tunnels
}

// Close closes every registered connection, which ends their tunnels,
// and refuses new ones.
func (s *Set) Close() {
	s.mu.Lock()
	s.closed = true
	open := make([]io.Closer, 0, len(s.open))
	for c := range s.open {
		open = append(open, c)
	}
	clear(s.open)
	s.tunnels = 0
	s.mu.Unlock()
	for _, c := range open {
		c.Close()
	}
}
