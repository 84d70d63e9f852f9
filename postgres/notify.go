package postgres

import (
	"context"
	"time"

	"github.com/gatehouse/gatehouse"
)

// notifyChannel is the channel migration 2's trigger notifies on.
const notifyChannel = "gatehouse_changes"

var _ gatehouse.Notifier = (*DB)(nil)

// Subscribe listens for committed changes to the records nodes wait on and
// sends their kind. It holds one connection of the pool for as long as ctx
// lives; when that connection is lost it sends "" (anything may have
// changed meanwhile) and listens again, once a second, until it can. The
// channel is closed when ctx is done. Notifications are hints: a slow
// reader loses some, never all (the channel keeps one of each kind).
func (s *DB) Subscribe(ctx context.Context) <-chan gatehouse.Kind {
	out := make(chan gatehouse.Kind, 4)
	send := func(k gatehouse.Kind) {
		select {
		case out <- k:
		default:
		}
	}
	go func() {
		defer close(out)
		for ctx.Err() == nil {
			s.listen(ctx, send)
			send("")
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	return out
}

// listen relays notifications until the connection fails or ctx ends.
func (s *DB) listen(ctx context.Context, send func(gatehouse.Kind)) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return
	}
	// A LISTENing session must not go back to the pool for others.
	pc := conn.Hijack()
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		pc.Close(cctx)
	}()
	if _, err := pc.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return
	}
	send("") // listening now: what happened before is worth a look
	for {
		n, err := pc.WaitForNotification(ctx)
		if err != nil {
			return
		}
		send(gatehouse.Kind(n.Payload))
	}
}
