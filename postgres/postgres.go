// Package postgres implements gatehouse.Store on PostgreSQL, using
// github.com/jackc/pgx/v5 and its connection pool, so that several gateway
// nodes can share one configuration store.
//
// # Concurrency
//
// Write transactions run at READ COMMITTED and take explicit row locks, so
// that every check a write makes still holds when it commits, as in SQLite
// (which serialises writers), while writes to unrelated records do not wait
// for each other:
//
//   - Update locks its own row (FOR NO KEY UPDATE): concurrent updates of
//     one record queue, and each sees the version the previous one
//     committed, so exactly one of several updates from the same version
//     wins and the others fail with EPRECONDITION.
//   - Create and Update lock the rows of the records they point at (parent
//     and refs) FOR KEY SHARE; Delete locks the record and, level by level,
//     its descendants FOR UPDATE before it looks for users. The two lock
//     modes conflict, so a Delete and a write adding a use of the same
//     record are ordered: either the Delete sees the new use (ECONFLICT) or
//     the write sees the record gone (EUNPROCESSABLE).
//   - Ids and unique keys are claimed by INSERT ... ON CONFLICT DO NOTHING
//     against their unique indexes: of several concurrent claims exactly
//     one inserts, the others wait for it to commit and then report who
//     holds the id or key (ECONFLICT), with the same message as SQLite.
//   - Creates take a transaction-scoped advisory lock just before they
//     insert, so that records' seq (the List cursor) is handed out in
//     commit order, and a List that paged past a seq never misses a record
//     committed later.
//   - Writes of draft records take another advisory lock in shared mode,
//     and an Apply that checks the draft's tag (ifDraft) takes it
//     exclusively, so that no write of the draft comes between its check
//     and its commit (see DB.Apply).
//
// Deadlocks (40P01) and serialisation failures (40001) are retried a few
// times with a fresh transaction, then reported as EUNAVAILABLE. So are
// connections that broke before COMMIT was sent (pooled connections that a
// restarted or failed-over server has ended): the server rolled those
// transactions back. A COMMIT whose answer was lost is not retried, since
// it may have taken effect; it is EUNAVAILABLE.
//
// Reads that need more than one statement (Snapshot, and Get of a missing
// id) run in one REPEATABLE READ READ ONLY transaction; the others are
// single statements, which see one snapshot by themselves.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Options configures a DB.
type Options struct {
	// TombstoneRetention is how long a deleted id answers EGONE before it
	// answers ENOTFOUND. Zero means 24h.
	TombstoneRetention time.Duration
	// Now is the clock; nil means time.Now. Tests inject a fake clock.
	Now func() time.Time
}

// DefaultTombstoneRetention is the TombstoneRetention used when Options
// leaves it zero.
const DefaultTombstoneRetention = 24 * time.Hour

// defaultConnectTimeout bounds each connection attempt when the DSN sets
// no connect_timeout.
const defaultConnectTimeout = 10 * time.Second

// maxAttempts is how often a call runs at most while its attempts fail in
// ways a fresh attempt may cure (see retryable).
const maxAttempts = 5

// errClosed is the cause of the EUNAVAILABLE that calls after Close get.
var errClosed = errors.New("postgres: store is closed")

// DB is a gatehouse.Store backed by a PostgreSQL database. It is safe for
// concurrent use, also by several processes sharing one database.
type DB struct {
	pool      *pgxpool.Pool
	now       func() time.Time
	retention time.Duration
	closed    atomic.Bool
}

var _ gatehouse.Store = (*DB)(nil)

// Open connects to the database named by dsn (a postgres:// URL or a
// key=value connection string, as libpq takes; pool settings such as
// pool_max_conns are honoured) and brings its schema up to date. The tables
// live in the connection's current schema (search_path).
//
// A DSN without connect_timeout (or with 0) gets 10s per connection
// attempt. ctx bounds connecting and migrating only. An error from Open whose
// gatehouse.ErrorCode is EUNAVAILABLE means the server could not be reached
// and may be worth retrying; any other error will not go away by itself.
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	if opts.TombstoneRetention < 0 {
		return nil, fmt.Errorf("postgres: negative TombstoneRetention %v", opts.TombstoneRetention)
	}
	if opts.TombstoneRetention == 0 {
		opts.TombstoneRetention = DefaultTombstoneRetention
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The parse error masks passwords; the DSN itself is not repeated.
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		// Without one, a server that drops packets holds a call for as
		// long as the kernel tries to connect (minutes), where the caller
		// gave no deadline.
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &DB{pool: pool, now: opts.Now, retention: opts.TombstoneRetention}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	return s, nil
}

// Close closes the pool, waiting for connections in use to be returned.
// Calls after Close fail with EUNAVAILABLE.
func (s *DB) Close() error {
	s.closed.Store(true)
	s.pool.Close()
	return nil
}

// Ping reports whether the database can be queried.
func (s *DB) Ping(ctx context.Context) error {
	return s.retry(ctx, func() error {
		var one int
		return s.pool.QueryRow(ctx, `SELECT 1`).Scan(&one)
	})
}

// clock returns the current time as the store records it: UTC, truncated
// to microseconds (what timestamptz keeps), so that the times a write puts
// on rec are exactly those a later Get returns.
func (s *DB) clock() time.Time {
	return s.now().UTC().Truncate(time.Microsecond)
}

var (
	writeTx = pgx.TxOptions{IsoLevel: pgx.ReadCommitted, AccessMode: pgx.ReadWrite}
	readTx  = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
)

// write runs fn in a READ COMMITTED transaction and commits it if fn
// succeeds, retrying as retry does. Errors come back classified.
func (s *DB) write(ctx context.Context, fn func(w *wtx) error) error {
	return s.retry(ctx, func() error {
		return s.inTx(ctx, writeTx, func(tx pgx.Tx) error { return fn(&wtx{Tx: tx}) })
	})
}

// wtx is a write transaction and the advisory locks it holds, so that a
// batch of writes takes each lock once. Locks taken in a transaction that
// is retried are gone with it: each attempt gets a fresh wtx.
type wtx struct {
	pgx.Tx
	draft   bool // holds draftLock, shared or exclusive
	creates bool // holds createLock
}

// shareDraft takes draftLock in shared mode, unless it holds it already,
// before a write of a record of kind if that is a draft kind. Writes of
// the draft do not wait for each other, only for an Apply checking the
// draft's tag, which takes the lock exclusively (see DB.Apply).
func (w *wtx) shareDraft(ctx context.Context, kind gatehouse.Kind) error {
	if w.draft || !slices.Contains(gatehouse.DraftKinds, kind) {
		return nil
	}
	if _, err := w.Exec(ctx, `SELECT pg_advisory_xact_lock_shared($1)`, draftLock); err != nil {
		return err
	}
	w.draft = true
	return nil
}

// orderCreates takes createLock, unless it holds it already, just before
// the first insert of a record: held until commit, it makes the seq this
// insert takes higher than every committed one, and no later-committing
// Create takes a lower one.
func (w *wtx) orderCreates(ctx context.Context) error {
	if w.creates {
		return nil
	}
	if _, err := w.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, createLock); err != nil {
		return err
	}
	w.creates = true
	return nil
}

// read runs fn in a REPEATABLE READ READ ONLY transaction, so that
// everything fn reads comes from one snapshot.
func (s *DB) read(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return s.retry(ctx, func() error { return s.inTx(ctx, readTx, fn) })
}

// errRollback, returned by a transaction's fn, rolls back what fn did and
// is no failure: inTx returns nil (Try judges a batch this way).
var errRollback = errors.New("postgres: roll back")

// inTx runs fn in a transaction and commits it if fn succeeds, or rolls
// it back if fn returns errRollback.
func (s *DB) inTx(ctx context.Context, opts pgx.TxOptions, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		// After Commit this is a no-op. It must not use a canceled ctx:
		// pgx closes a connection whose ROLLBACK fails.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tx.Rollback(rctx)
	}()
	if err := fn(tx); err != nil {
		if err == errRollback {
			return nil
		}
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return &commitError{err}
	}
	return nil
}

// commitError is a failed COMMIT. Unlike a failure before it, it may leave
// the transaction committed (the connection broke after the server got
// the COMMIT), so it is retried only when pgx says nothing was sent.
type commitError struct{ err error }

func (e *commitError) Error() string { return "commit: " + e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

// retry runs attempt until it succeeds, fails for good, or has failed
// maxAttempts times in a way that a fresh attempt may cure; then it
// classifies the error. Every attempt must be a whole transaction (or a
// single statement): a retried attempt starts from scratch.
func (s *DB) retry(ctx context.Context, attempt func() error) error {
	if s.closed.Load() {
		return gatehouse.Unavailable(errClosed)
	}
	var err error
	for i := range maxAttempts {
		if i > 0 {
			// 1–2ms, 2–4ms, 4–8ms, ...: enough for the other side of a
			// deadlock to finish, jittered so retries do not collide again.
			d := time.Millisecond << (i - 1)
			d += rand.N(d)
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return s.classify(ctx, err)
			case <-t.C:
			}
		}
		err = attempt()
		if err == nil || !s.retryable(ctx, err) {
			break
		}
	}
	return s.classify(ctx, err)
}

// retryable reports whether running the failed attempt again may succeed
// and cannot do harm: PostgreSQL rolled the transaction back to break a
// deadlock or a serialisation conflict; or the connection broke before
// COMMIT was sent (a pooled connection the server has since ended, after a
// restart or a failover), which the server rolls back; or pgx failed
// before sending anything. A failed connect is not retried: a server that
// refused one connection now will refuse the next.
func (s *DB) retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil || s.closed.Load() {
		return false
	}
	var ge *gatehouse.Error
	if errors.As(err, &ge) {
		return false
	}
	if pgconn.SafeToRetry(err) || errors.Is(err, errKeyReleased) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01") {
		return true
	}
	var ce *commitError
	if errors.As(err, &ce) {
		return false // it may have committed
	}
	var connect *pgconn.ConnectError
	if errors.As(err, &connect) {
		return false
	}
	if pe != nil {
		switch pe.Code {
		case "57P01", "57P02", "57P03": // this session was ended
			return true
		}
		return strings.HasPrefix(pe.Code, "08")
	}
	return isConnectionError(err)
}

// classify turns err into what the Store contract promises: an
// *gatehouse.Error, or the context's own error when the caller gave up. It
// goes by SQLSTATE and error types, never by message text.
//
//	*gatehouse.Error                         as is
//	context canceled or past its deadline     the context's error, wrapped
//	store closed                              EUNAVAILABLE
//	23505 unique_violation                    ECONFLICT
//	40001, 40P01 (after the retries)          EUNAVAILABLE
//	class 08 connection exception             EUNAVAILABLE
//	class 53 insufficient resources           EUNAVAILABLE
//	class 58 system error (I/O)               EUNAVAILABLE
//	57P01-57P05 shutdown, cannot connect now  EUNAVAILABLE
//	57014 statement timeout, 55P03 lock_not_available,
//	25006 read-only transaction (a standby)   EUNAVAILABLE
//	connect errors, broken connections        EUNAVAILABLE
//	everything else, 23503 included           EINTERNAL
func (s *DB) classify(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var ge *gatehouse.Error
	if errors.As(err, &ge) {
		return err
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		// The caller gave up; whatever pgx said (a canceled query, a
		// closed connection) is a consequence of that, not an outage.
		return fmt.Errorf("postgres: %w", ctxErr)
	}
	if s.closed.Load() {
		return gatehouse.Unavailable(err)
	}
	if errors.Is(err, errKeyReleased) {
		// Lost every retry to claims let go of again: still a conflict.
		return gatehouse.Clash(err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		if pe.Code == "23505" { // unique_violation
			// The store claims ids and keys with ON CONFLICT DO NOTHING,
			// so this means a check was missed; it is still a conflict.
			return gatehouse.Clash(err)
		}
		if unavailableState(pe.Code) {
			return gatehouse.Unavailable(err)
		}
		// A PgError inside a ConnectError (a wrong password, a missing
		// database) still means the store cannot be reached.
		var ce *pgconn.ConnectError
		if errors.As(err, &ce) {
			return gatehouse.Unavailable(err)
		}
		return gatehouse.Internal(err)
	}
	if isConnectionError(err) {
		return gatehouse.Unavailable(err)
	}
	return gatehouse.Internal(err)
}

// unavailableState reports whether a SQLSTATE means the store cannot serve
// the call now, though it may later: the server is going away, out of
// resources, a standby, or (after the retries) kept aborting the call.
func unavailableState(code string) bool {
	switch code {
	case "40001", // serialization_failure
		"40P01", // deadlock_detected
		"57P01", // admin_shutdown
		"57P02", // crash_shutdown
		"57P03", // cannot_connect_now (starting up, shutting down, in recovery)
		"57P04", // database_dropped
		"57P05", // idle_session_timeout
		"57014", // query_canceled: a statement_timeout, as ctx is not done
		"55P03", // lock_not_available: a lock_timeout
		"25006": // read_only_sql_transaction: connected to a standby
		return true
	}
	switch code[:min(2, len(code))] {
	case "08", // connection_exception
		"53", // insufficient_resources
		"58": // system_error (I/O)
		return true
	}
	return false
}

// isConnectionError reports whether err means the connection to the server
// could not be made or broke.
func isConnectionError(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) ||
		errors.As(err, &ne) ||
		errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) ||
		pgconn.SafeToRetry(err)
}
