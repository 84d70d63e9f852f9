package policy

import (
	"sync"
	"time"
)

// testClock is Env.Now for tests: time moves only when told. Background
// work (the JWKS fetcher) reads it from its own goroutine.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
