package policy

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Local rate-limit counters: a GCRA TAT per key, in nanoseconds since the
// epoch, advanced by compare-and-swap, so that requests of one key never
// wait on a lock and requests of different keys only share a shard's
// read lock while looking their counter up.
//
// Memory is bounded. A key whose TAT is past is as good as a fresh one
// and is dropped: each shard sweeps such keys when an insert finds it
// holding twice the keys it kept after its last sweep (amortised O(1)
// per insert, no background goroutine). And a limiter holds at most
// localMaxKeys keys (about 100 bytes each): a shard that is full of live
// keys after sweeping forgets a quarter of them, arbitrarily. Those
// clients get a fresh burst: under a flood of distinct addresses the
// limiter errs towards admitting, never towards growing without bound.

const (
	localShards = 32 // a power of two
	// localSweepMin is how many keys a shard holds before its first sweep.
	localSweepMin = 64
	// localMaxKeys bounds the keys of one limiter: one policy on one
	// route.
	localMaxKeys = 1 << 18
)

// dead marks a counter that a sweep removed: whoever holds it looks the
// key up again.
const dead = math.MinInt64

// limitKey is what a local counter counts: a consumer's id, or a client
// address, or neither (by route).
type limitKey struct {
	id   string
	addr netip.Addr
}

var keySeed = maphash.MakeSeed()

func (k limitKey) shard() uint64 {
	if k.id != "" {
		return maphash.String(keySeed, k.id)
	}
	b := k.addr.As16()
	// splitmix64's finaliser over both halves: IPv4 addresses differ only
	// in the last four bytes.
	x := binary.LittleEndian.Uint64(b[:8])*0x9e3779b97f4a7c15 ^ binary.LittleEndian.Uint64(b[8:])
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

type cell struct{ tat atomic.Int64 }

// localLimiter is the counters of one policy on one route on this node.
type localLimiter struct {
	interval, tolerance int64 // GCRA's T and τ, ns
	// one is the only counter of a limit by route; then shards are unused.
	one *cell
	// shardMax is the most keys a shard holds: localMaxKeys/localShards.
	shardMax int
	shards   [localShards]limiterShard
}

type limiterShard struct {
	mu sync.RWMutex
	// cells is allocated on the shard's first key.
	cells   map[limitKey]*cell
	sweepAt int
	// Shards are written by different cores: one cache line each.
	_ [64 - (unsafe.Sizeof(sync.RWMutex{})+16)%64]byte
}

func newLocalLimiter(interval, tolerance int64, single bool) *localLimiter {
	l := &localLimiter{interval: interval, tolerance: tolerance, shardMax: localMaxKeys / localShards}
	if single {
		l.one = new(cell)
	}
	return l
}

// take counts a request of key k at now (ns) if the limit admits it. d is
// TAT-now after the request if admitted, as it stands if not; c is the
// counter, for giveBack.
func (l *localLimiter) take(k limitKey, now int64) (c *cell, d int64, ok bool) {
	c = l.cell(k, now)
	for {
		tat := c.tat.Load()
		if tat == dead {
			c = l.cell(k, now)
			continue
		}
		t := max(tat, now)
		if t-now > l.tolerance {
			return c, t - now, false
		}
		if c.tat.CompareAndSwap(tat, t+l.interval) {
			return c, t + l.interval - now, true
		}
	}
}

// peek returns TAT-now of key k at now without counting (0 for a key
// with no counter).
func (l *localLimiter) peek(k limitKey, now int64) int64 {
	var c *cell
	if l.one != nil {
		c = l.one
	} else {
		s := &l.shards[k.shard()&(localShards-1)]
		s.mu.RLock()
		c = s.cells[k]
		s.mu.RUnlock()
	}
	if c == nil {
		return 0
	}
	return max(0, c.tat.Load()-now)
}

// giveBack undoes a take that admitted a request another limit refused.
func (l *localLimiter) giveBack(c *cell) {
	for {
		tat := c.tat.Load()
		if tat == dead || c.tat.CompareAndSwap(tat, tat-l.interval) {
			return
		}
	}
}

// cell returns k's counter, made if there is none.
func (l *localLimiter) cell(k limitKey, now int64) *cell {
	if l.one != nil {
		return l.one
	}
	s := &l.shards[k.shard()&(localShards-1)]
	s.mu.RLock()
	c := s.cells[k]
	s.mu.RUnlock()
	if c != nil {
		return c
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c = s.cells[k]; c != nil {
		return c
	}
	if s.cells == nil {
		s.cells = make(map[limitKey]*cell)
		s.sweepAt = min(localSweepMin, l.shardMax)
	}
	if len(s.cells) >= s.sweepAt {
		s.sweep(now, l.shardMax)
	}
	c = new(cell)
	s.cells[k] = c
	return c
}

// sweep drops the keys whose TAT is past, and if the shard still holds
// most keys, a quarter of them; s.mu is held.
func (s *limiterShard) sweep(now int64, most int) {
	for k, c := range s.cells {
		// The swap fails if a request counted meanwhile: the key lives.
		if tat := c.tat.Load(); tat <= now && c.tat.CompareAndSwap(tat, dead) {
			delete(s.cells, k)
		}
	}
	if len(s.cells) >= most {
		for k, c := range s.cells {
			if len(s.cells) <= most*3/4 {
				break
			}
			c.tat.Store(dead)
			delete(s.cells, k)
		}
	}
	s.sweepAt = min(max(2*len(s.cells), localSweepMin), most)
}

// len returns the number of keys held, for tests.
func (l *localLimiter) len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.RLock()
		n += len(s.cells)
		s.mu.RUnlock()
	}
	return n
}
