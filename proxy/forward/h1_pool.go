// The h1Transport's idle connections: a LIFO stack, checked when taken,
// pruned by a timer.

package forward

import (
	"bufio"
	"context"
	"time"
)

// conn returns an idle connection, or dials one if there is none or fresh
// is set. An idle connection is used only if its peeker vouches for it at
// this moment: closed by the upstream, it would fail the request; with
// bytes waiting, it would hand them to this request as its response.
// Such a connection is closed, as net/http closes one on an "unsolicited
// response received on idle HTTP channel".
func (t *h1Transport) conn(ctx context.Context, now time.Time, fresh bool) (*h1Conn, error) {
	for !fresh {
		pc := t.getIdle(now)
		if pc == nil {
			break
		}
		if !pc.peeker.alive() {
			pc.close()
			continue
		}
		return pc, nil
	}
	c, err := t.dial(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	pc := &h1Conn{t: t, conn: c, peeker: newPeeker(c)}
	pc.br = bufio.NewReaderSize(c, h1BufferSize)
	pc.bw = bufio.NewWriterSize(c, h1BufferSize)
	pc.abort = func() { c.Close() }
	return pc, nil
}

func (pc *h1Conn) close() { pc.conn.Close() }

// getIdle pops the most recently used idle connection. One idle past
// idleConnTimeout means every one below it is too: all are closed.
func (t *h1Transport) getIdle(now time.Time) *h1Conn {
	t.mu.Lock()
	n := len(t.idle)
	if n == 0 {
		t.mu.Unlock()
		return nil
	}
	pc := t.idle[n-1]
	if now.Sub(pc.since) >= idleConnTimeout {
		expired := t.idle
		t.idle = nil
		t.mu.Unlock()
		for _, pc := range expired {
			pc.close()
		}
		return nil
	}
	t.idle[n-1] = nil
	t.idle = t.idle[:n-1]
	t.mu.Unlock()
	pc.reused = true
	return pc
}

// putIdle keeps pc for reuse, or closes it if the stack is full.
func (t *h1Transport) putIdle(pc *h1Conn) {
	pc.since = time.Now()
	t.mu.Lock()
	if len(t.idle) >= maxIdleConnsPerHost {
		t.mu.Unlock()
		pc.close()
		return
	}
	t.idle = append(t.idle, pc)
	if !t.armed {
		t.armed = true
		if t.janitor == nil {
			t.janitor = time.AfterFunc(idleConnTimeout, t.prune)
		} else {
			t.janitor.Reset(idleConnTimeout)
		}
	}
	t.mu.Unlock()
}

// prune runs on the janitor's timer: it closes the idle connections past
// idleConnTimeout and schedules itself for the next to expire, if any. It
// is a timer, not a goroutine: nothing runs while nothing is idle.
func (t *h1Transport) prune() {
	now := time.Now()
	t.mu.Lock()
	k := 0
	for k < len(t.idle) && now.Sub(t.idle[k].since) >= idleConnTimeout {
		k++
	}
	expired := append([]*h1Conn(nil), t.idle[:k]...)
	t.removeLocked(k)
	if len(t.idle) > 0 {
		t.janitor.Reset(idleConnTimeout - now.Sub(t.idle[0].since))
	} else {
		t.armed = false
	}
	t.mu.Unlock()
	for _, pc := range expired {
		pc.close()
	}
}

// dropIdleSince closes the idle connections idle since before since.
func (t *h1Transport) dropIdleSince(since time.Time) {
	t.mu.Lock()
	k := 0
	for k < len(t.idle) && !t.idle[k].since.After(since) {
		k++
	}
	stale := append([]*h1Conn(nil), t.idle[:k]...)
	t.removeLocked(k)
	t.mu.Unlock()
	for _, pc := range stale {
		pc.close()
	}
}

// removeLocked removes the k oldest idle connections from the stack.
func (t *h1Transport) removeLocked(k int) {
	if k == 0 {
		return
	}
	n := copy(t.idle, t.idle[k:])
	clear(t.idle[n:])
	t.idle = t.idle[:n]
}

// CloseIdleConnections closes every idle connection. Connections in use
// are not interrupted; they are kept for reuse when their exchange ends,
// and closed by the janitor once idle too long.
func (t *h1Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	if t.janitor != nil {
		t.janitor.Stop()
	}
	t.armed = false
	t.mu.Unlock()
	for _, pc := range idle {
		pc.close()
	}
}
