package h1

import (
	"context"
	"testing"
	"time"
)

// ran reports whether f's channel is closed within a while.
func ran(ch chan struct{}, within time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(within):
		return false
	}
}

func TestConnContextAborterActsAsAfterFunc(t *testing.T) {
	tests := []struct {
		desc string
		// run registers f (closing the channel it returns) on ctx, whose
		// cancel it may call, and returns StopAbort's result.
		run       func(t *testing.T, ctx context.Context, cancel context.CancelFunc) (ch chan struct{}, stopped bool)
		wantStop  bool
		wantCalls bool
	}{
		{desc: "stopped before the context ends: never called", wantStop: true,
			run: func(t *testing.T, ctx context.Context, cancel context.CancelFunc) (chan struct{}, bool) {
				ch := make(chan struct{})
				id := register(t, ctx, ch)
				stopped := ctx.(Aborter).StopAbort(id)
				cancel()
				return ch, stopped
			}},
		{desc: "the context ends: called, and stop says so", wantCalls: true,
			run: func(t *testing.T, ctx context.Context, cancel context.CancelFunc) (chan struct{}, bool) {
				ch := make(chan struct{})
				id := register(t, ctx, ch)
				cancel()
				if !ran(ch, 5*time.Second) {
					t.Fatal("not called after cancel")
				}
				return ch, ctx.(Aborter).StopAbort(id)
			}},
		{desc: "registered after the context ended: called at once", wantCalls: true,
			run: func(t *testing.T, ctx context.Context, cancel context.CancelFunc) (chan struct{}, bool) {
				cancel()
				ch := make(chan struct{})
				return ch, ctx.(Aborter).StopAbort(register(t, ctx, ch))
			}},
		{desc: "stopped right after the context ended: too late, called", wantCalls: true,
			run: func(t *testing.T, ctx context.Context, cancel context.CancelFunc) (chan struct{}, bool) {
				ch := make(chan struct{})
				id := register(t, ctx, ch)
				cancel()
				return ch, ctx.(Aborter).StopAbort(id)
			}},
		{desc: "stopped twice: the second stop stops nothing", wantStop: false,
			run: func(t *testing.T, ctx context.Context, cancel context.CancelFunc) (chan struct{}, bool) {
				ch := make(chan struct{})
				id := register(t, ctx, ch)
				ctx.(Aborter).StopAbort(id)
				cancel()
				return ch, ctx.(Aborter).StopAbort(id)
			}},
		{desc: "an earlier registration's stop leaves the next one in place", wantStop: false, wantCalls: true,
			run: func(t *testing.T, ctx context.Context, cancel context.CancelFunc) (chan struct{}, bool) {
				old := register(t, ctx, make(chan struct{}))
				ctx.(Aborter).StopAbort(old)
				ch := make(chan struct{})
				register(t, ctx, ch)
				stopped := ctx.(Aborter).StopAbort(old)
				cancel()
				return ch, stopped
			}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			ctx, cancel := newConnContext(context.Background())
			defer cancel()
			ch, stopped := tt.run(t, ctx, cancel)
			if stopped != tt.wantStop {
				t.Errorf("StopAbort got %v; want %v", stopped, tt.wantStop)
			}
			wait := 100 * time.Millisecond
			if tt.wantCalls {
				wait = 5 * time.Second
			}
			if called := ran(ch, wait); called != tt.wantCalls {
				t.Errorf("called got %v; want %v", called, tt.wantCalls)
			}
		})
	}
}

// register registers the closing of ch on ctx, which must take it.
func register(t *testing.T, ctx context.Context, ch chan struct{}) uint64 {
	t.Helper()
	id, ok := ctx.(Aborter).OnAbort(func() { close(ch) })
	if !ok {
		t.Fatal("OnAbort refused a registration with the place free")
	}
	return id
}

func TestConnContextHoldsOneRegistrationAtATime(t *testing.T) {
	ctx, cancel := newConnContext(context.Background())
	defer cancel()
	a := ctx.(Aborter)
	id, _ := a.OnAbort(func() {})
	if _, ok := a.OnAbort(func() {}); ok {
		t.Fatal("a second registration got the place while the first holds it")
	}
	a.StopAbort(id)
	if _, ok := a.OnAbort(func() {}); !ok {
		t.Fatal("the place stays taken after its registration was stopped")
	}
}

func TestConnContextAborterAllocatesNothing(t *testing.T) {
	ctx, cancel := newConnContext(context.Background())
	defer cancel()
	a := ctx.(Aborter)
	f := func() {}
	if n := testing.AllocsPerRun(100, func() {
		id, _ := a.OnAbort(f)
		a.StopAbort(id)
	}); n != 0 {
		t.Errorf("got %v allocations per registration; want 0", n)
	}
}

func TestConnContextEndsWithItsParent(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.Background())
	ctx, cancel := newConnContext(parent)
	defer cancel()
	ch := make(chan struct{})
	register(t, ctx, ch)
	cancelParent()
	if !ran(ch, 5*time.Second) {
		t.Fatal("the parent's end did not call the registered function")
	}
	if ctx.Err() != context.Canceled {
		t.Errorf("Err got %v; want context.Canceled", ctx.Err())
	}
}
