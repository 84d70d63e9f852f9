package serve

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/gatehouse/gatehouse/internal/h1"
)

// The engines a listener can run HTTP/1.x with (Options.Engine).
const (
	// EngineStd is net/http's server, with conn beneath it.
	EngineStd = "std"
	// EngineFast is internal/h1's: the same handler chain (wrap), its
	// own connection handling; HTTP/2 is handed to net/http.
	EngineFast = "fast"
)

// serveFast serves l with the h1 engine; connections that speak HTTP/2
// go to the net/http server New built, through a listener of their own.
func (s *Server) serveFast(l net.Listener) error {
	tlsConfig, err := s.tlsConfig()
	if err != nil {
		return err
	}
	srv := &h1.Server{
		Handler:           s.http.Handler,
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		MaxHeaderBytes:    s.opts.MaxHeaderBytes,
		TLSConfig:         tlsConfig,
		H2C:               s.opts.H2C,
		Logger:            s.opts.Logger,
		RequestID:         NewRequestID,
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			// What handlers look up on net/http's server (proxy/grpc.go
			// reads ReadTimeout from it).
			ctx = context.WithValue(ctx, http.ServerContextKey, s.http)
			return context.WithValue(ctx, recorderKey{}, new(connRecorder))
		},
	}
	if tlsConfig != nil || s.opts.H2C {
		h2 := newHandOver(l.Addr())
		srv.HandOver = h2.give
		go s.http.Serve(listener{h2, s.opts.Logger, s.opts.H2C})
	}
	s.mu.Lock()
	if s.shut {
		s.mu.Unlock()
		l.Close()
		return nil
	}
	s.fast = append(s.fast, srv)
	s.mu.Unlock()
	if err := srv.Serve(l); !errors.Is(err, h1.ErrServerClosed) {
		return err
	}
	return nil
}

// connRecorder is the statusRecorder of an h1 connection's requests:
// the engine serves them one after another, each after the last one's
// handler returned, so wrap reuses it rather than allocate one per
// request. What a handler might do with its writer after returning, it
// would do to the engine's response, which the connection reuses too.
type connRecorder struct {
	rec statusRecorder
	// busy: a wrap on the request holds rec; another (a server's chain
	// inside another's) allocates its own.
	busy bool
}

// recorderKey finds a connection's connRecorder in its context.
type recorderKey struct{}

// handOver is a listener whose connections the h1 engine gives it: those
// that speak HTTP/2, which net/http serves.
type handOver struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newHandOver(addr net.Addr) *handOver {
	return &handOver{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (h *handOver) give(c net.Conn) {
	select {
	case h.conns <- c:
	case <-h.closed:
		c.Close()
	}
}

func (h *handOver) Accept() (net.Conn, error) {
	select {
	case c := <-h.conns:
		return c, nil
	case <-h.closed:
		return nil, net.ErrClosed
	}
}

func (h *handOver) Close() error {
	h.once.Do(func() { close(h.closed) })
	return nil
}

func (h *handOver) Addr() net.Addr { return h.addr }

// limitListener holds Accept while max connections are open, for both
// engines: beyond it, new connections wait in the kernel's backlog.
type limitListener struct {
	net.Listener
	slots  chan struct{}
	closed chan struct{}
	once   sync.Once
}

func limit(l net.Listener, max int) net.Listener {
	return &limitListener{Listener: l, slots: make(chan struct{}, max), closed: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.closed:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// limitConn gives its slot back when closed, once.
type limitConn struct {
	net.Conn
	release func()
	once    sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// CloseWrite passes a tunnel's half-close on (see conn.CloseWrite).
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// ReadFrom keeps the socket's own (splice, sendfile) for copies into it.
func (c *limitConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}
