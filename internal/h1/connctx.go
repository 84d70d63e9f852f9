package h1

import (
	"context"
	"sync"
)

// Aborter is implemented by the context the fast engine gives its
// requests (the connection's). It does for one function at a time what
// context.AfterFunc does, without AfterFunc's two allocations per call:
// the proxy's HTTP/1.1 transport registers the closing of its upstream
// connection with it on every exchange (issue 14: at most two allocations
// per request). A context that merely wraps the connection's (WithValue,
// WithCancel...) does not implement it; its users call context.AfterFunc.
type Aborter interface {
	// OnAbort arranges for f to be called, in its own goroutine, once the
	// context is done: at once if it already is. ok is false if another
	// function holds the one place (the caller then uses
	// context.AfterFunc); otherwise id is what StopAbort takes.
	OnAbort(f func()) (id uint64, ok bool)
	// StopAbort stops the function OnAbort registered under id from
	// being called, as the stop function of context.AfterFunc does: false
	// if it was already started (the context is done) or stopped.
	StopAbort(id uint64) bool
}

var _ Aborter = (*connContext)(nil)

// connContext is a connection's context: the cancelable one it embeds,
// which its Done, Err and Value are (so that contexts derived from it
// register with it as with any other), and the one place of Aborter.
type connContext struct {
	context.Context
	cancel context.CancelFunc // the embedded context's

	mu   sync.Mutex
	f    func() // registered and not yet stopped or started
	id   uint64 // the latest registration's
	done bool   // the context is done: f, if any, was started
}

// newConnContext returns a connection's context, derived from parent, and
// what cancels it. A parent that can end (a ConnContext's) tells it so
// through one context.AfterFunc per connection; the cancel returned tells
// it directly.
func newConnContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	c := &connContext{Context: ctx, cancel: cancel}
	if parent.Done() != nil {
		context.AfterFunc(ctx, func() {
			if f := c.end(); f != nil {
				f()
			}
		})
	}
	return c, c.cancelAll
}

func (c *connContext) OnAbort(f func()) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f != nil {
		return 0, false
	}
	c.id++
	if c.done {
		go f()
	} else {
		c.f = f
	}
	return c.id, true
}

func (c *connContext) StopAbort(id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Another id holds the place only once this one's f was stopped or
	// started. A context that is done has its abort on the way, which
	// starts f: as with context.AfterFunc, stopping is too late.
	if id != c.id || c.f == nil || c.Context.Err() != nil {
		return false
	}
	c.f = nil
	return true
}

// cancelAll cancels the context and starts the registered function.
func (c *connContext) cancelAll() {
	c.cancel()
	if f := c.end(); f != nil {
		go f()
	}
}

// end marks the context done and returns the function to start, if any.
func (c *connContext) end() func() {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.f
	c.f, c.done = nil, true
	return f
}
