// Package h1 is gatehouse's own HTTP/1.1 server engine (issue 14): one
// goroutine per connection reads request heads into a pooled buffer,
// fills a *http.Request reused for the connection's requests, and answers
// through its own http.ResponseWriter, so that the handler chain (serve's
// wrap, the proxy) runs unchanged on either engine. HTTP/2 (by ALPN, or
// h2c by prior knowledge) is handed over to net/http.
package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves HTTP/1.x on the listeners given to Serve.
type Server struct {
	// Handler answers every request.
	Handler http.Handler
	// ReadHeaderTimeout bounds a request head, from its first byte (the
	// first request's from the connection's start); a client that stalls
	// with part of a head gets the 408 problem.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds the whole request, body included, from its first
	// byte: a body read past it fails with a timeout error.
	ReadTimeout time.Duration
	// IdleTimeout bounds the wait for the next request of a kept-alive
	// connection; at it the connection closes without a word.
	IdleTimeout time.Duration
	// MaxHeaderBytes is the limit on a request head; over it is 431.
	MaxHeaderBytes int
	// TLSConfig, if set, makes every connection TLS; one that negotiates
	// h2 by ALPN goes to HandOver.
	TLSConfig *tls.Config
	// H2C hands cleartext connections that begin with the HTTP/2 preface
	// to HandOver.
	H2C bool
	// HandOver takes the connections that speak HTTP/2, with any bytes
	// already read from them still to be read. Nil: none are handed over.
	HandOver func(net.Conn)
	// ConnContext, if set, derives a connection's context from the base
	// one; requests' contexts are derived from it.
	ConnContext func(context.Context, net.Conn) context.Context
	// Logger reports handler panics; nil means slog.Default().
	Logger *slog.Logger
	// RequestID names the problems the engine writes itself (a malformed
	// head, a stall); nil: they have none.
	RequestID func() string

	// bigReaders hold heads longer than the small buffer.
	bigReaders sync.Pool

	mu        sync.Mutex
	watcher   sync.Once
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   atomic.Bool
}

// ErrServerClosed is what Serve returns after Shutdown or Close.
var ErrServerClosed = http.ErrServerClosed

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Serve accepts connections on l until Shutdown or Close, serving each on
// its own goroutine.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	if s.listeners == nil {
		s.listeners = map[net.Listener]struct{}{}
		s.conns = map[*conn]struct{}{}
		if s.MaxHeaderBytes <= 0 {
			s.MaxHeaderBytes = http.DefaultMaxHeaderBytes
		}
		size := max(s.MaxHeaderBytes, smallBuffer)
		s.bigReaders.New = func() any { return bufio.NewReaderSize(nil, size) }
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	s.watcher.Do(func() { go s.watch() })
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()

	base := context.WithValue(context.Background(), http.LocalAddrContextKey, l.Addr())
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			// As net/http: a temporary failure (out of descriptors) is
			// waited out, with backoff, rather than ending the listener.
			if isTimeout(err) || errors.Is(err, errTooManyFiles) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := newConn(s, nc, base)
		if !s.track(c, true) {
			nc.Close()
			return ErrServerClosed
		}
		go c.serve()
	}
}

// watch starts, every watchDelay until Shutdown or Close, a watch on the
// connections whose handler has run longer than watchDelay with its
// request read: one timer for the server rather than one reset per
// request, each of which could wake the network poller.
func (s *Server) watch() {
	t := time.NewTicker(watchDelay)
	defer t.Stop()
	for now := range t.C {
		if s.closing.Load() {
			return
		}
		due := now.UnixNano() - int64(watchDelay)
		s.mu.Lock()
		for c := range s.conns {
			if b := c.busy.Load(); b > 1 && b <= due {
				c.startWatch()
			}
		}
		s.mu.Unlock()
	}
}

// track adds c to the connections Shutdown waits for, or removes it;
// adding fails once Shutdown began.
func (s *Server) track(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.closing.Load() {
			return false
		}
		s.conns[c] = struct{}{}
		return true
	}
	delete(s.conns, c)
	return true
}

// Shutdown stops accepting, closes the idle connections, and waits for
// the others to finish their requests (each closes once its response is
// complete), or for ctx to end, when it closes them all.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.closeListeners()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.closeIdle(false) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			s.closeIdle(true)
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.closing.Store(true)
	s.closeListeners()
	s.closeIdle(true)
	return nil
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for l := range s.listeners {
		l.Close()
	}
}

// closeIdle closes the idle connections (all of them if all) and returns
// how many remain open.
func (s *Server) closeIdle(all bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.mu.Lock()
		if all || c.idle {
			c.nc.Close()
		}
		c.mu.Unlock()
	}
	return len(s.conns)
}
