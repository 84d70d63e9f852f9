// Package sqlite implements gatehouse.Store on an embedded SQLite database,
// using modernc.org/sqlite so that the gateway builds without cgo.
//
// The database runs in WAL mode with synchronous=FULL: a write that returned
// nil is on disk and survives the process being killed. Reads run
// concurrently on pooled connections, each in its own snapshot; writes are
// serialized, within the process by a semaphore and across processes by
// BEGIN IMMEDIATE, so that no write transaction ever has to be retried.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
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

// busyTimeout is how long a statement waits for a lock held by another
// connection before it fails with SQLITE_BUSY (reported as EUNAVAILABLE).
const busyTimeout = 5 * time.Second

// DB is a gatehouse.Store backed by one SQLite database file. It is safe for
// concurrent use.
type DB struct {
	db        *sql.DB
	now       func() time.Time
	retention time.Duration

	// writes holds one token per running write transaction, and has room
	// for one. Writers queue here, where they can give up when their
	// context ends, instead of in SQLite's busy handler, which polls with
	// sleeps. BEGIN IMMEDIATE still serializes writers in other processes.
	writes chan struct{}

	// damaged is set by the first query that finds the file corrupt. From
	// then on every call fails with it: a damaged index can also answer
	// wrongly without an error (a token not found, an id absent), and no
	// retry repairs a file.
	damaged atomic.Pointer[gatehouse.Error]
}

var _ gatehouse.Store = (*DB)(nil)

// Open opens the database at path, creating the file and its parent
// directory if needed, and brings its schema up to date. path must name a
// file: WAL needs one, and an in-memory database would differ per pooled
// connection.
func Open(path string, opts Options) (*DB, error) {
	return open(path, opts, busyTimeout)
}

func open(path string, opts Options, busy time.Duration) (*DB, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: %q is not a file path", path)
	}
	if strings.ContainsRune(path, '?') {
		// The driver splits its DSN at the first '?'.
		return nil, fmt.Errorf("sqlite: path %q must not contain '?'", path)
	}
	if opts.TombstoneRetention < 0 {
		return nil, fmt.Errorf("sqlite: negative TombstoneRetention %v", opts.TombstoneRetention)
	}
	if opts.TombstoneRetention == 0 {
		opts.TombstoneRetention = DefaultTombstoneRetention
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}

	sdb, err := sql.Open("sqlite", dsn(path, busy))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// Keep connections open: each new one re-runs the pragmas.
	n := max(4, runtime.GOMAXPROCS(0))
	sdb.SetMaxOpenConns(n)
	sdb.SetMaxIdleConns(n)

	ctx := context.Background()
	for _, step := range []func(context.Context, *sql.DB) error{checkJournal, checkIntegrity, migrate} {
		if err := step(ctx, sdb); err != nil {
			sdb.Close()
			if isCorrupt(err) {
				return nil, damagedFile(path, err)
			}
			return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
		}
	}
	return &DB{
		db:        sdb,
		now:       opts.Now,
		retention: opts.TombstoneRetention,
		writes:    make(chan struct{}, 1),
	}, nil
}

// dsn builds the driver's data source name. The pragmas travel in the DSN
// so that the driver applies them to every connection the pool opens, not
// just the first: synchronous and foreign_keys are per connection.
//
// _txlock=immediate makes every read-write transaction BEGIN IMMEDIATE: it
// takes the write lock up front, so a transaction never fails midway with
// SQLITE_BUSY because another connection wrote after it read. Read-only
// transactions (sql.TxOptions.ReadOnly) still begin DEFERRED and read a
// snapshot without blocking anyone.
func dsn(path string, busy time.Duration) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	// FULL, not NORMAL: in WAL mode NORMAL may lose the last commits on
	// power loss, and an acknowledged write must not be lost.
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	return path + "?" + q.Encode()
}

// checkJournal fails unless the database really is in WAL mode: SQLite
// silently keeps another journal mode where WAL is impossible, and the
// concurrency and durability described above depend on it.
func checkJournal(ctx context.Context, db *sql.DB) error {
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal_mode is %q, want wal", mode)
	}
	return nil
}

// integrityBudget bounds the integrity check at start. A configuration
// store is small and is checked in milliseconds; a huge one starts
// unchecked rather than not at all, and corruption found later still
// takes the node out of service (see DB.damaged).
const integrityBudget = 10 * time.Second

// checkIntegrity runs SQLite's quick_check, which reads every page and
// checks its structure, though not that indexes agree with their tables
// (integrity_check's far slower work).
func checkIntegrity(ctx context.Context, db *sql.DB) error {
	ctx, cancel := context.WithTimeout(ctx, integrityBudget)
	defer cancel()
	var result string
	err := db.QueryRowContext(ctx, `PRAGMA quick_check(1)`).Scan(&result)
	switch {
	case ctx.Err() != nil:
		slog.Warn("sqlite: integrity check skipped: the database is too large to check within the budget", "budget", integrityBudget)
		return nil
	case err != nil:
		return err
	case result != "ok":
		return errCorrupt{result}
	}
	return nil
}

// errCorrupt is the finding of an integrity check.
type errCorrupt struct{ finding string }

func (e errCorrupt) Error() string { return "integrity check: " + e.finding }

// isCorrupt reports whether err says the database file is damaged.
func isCorrupt(err error) bool {
	var se *msqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
			return true
		}
	}
	return errors.As(err, new(errCorrupt))
}

// damagedFile is why a damaged database does not open: what is wrong, and
// what the operator can do about it.
func damagedFile(path string, err error) error {
	return fmt.Errorf("sqlite: %s is damaged (%w). Gatehouse will not start on it. "+
		"Restore the file from a backup, or recover what is readable with "+
		"`sqlite3 %s .recover | sqlite3 recovered.db` and start on recovered.db", path, err, path)
}

// Damaged returns the damage a query found in the database file, or nil.
// It does not heal: the node is not ready until the file is restored.
func (s *DB) Damaged() error {
	if e := s.damaged.Load(); e != nil {
		return e
	}
	return nil
}

// Close closes the database. Calls after Close fail with EUNAVAILABLE.
func (s *DB) Close() error {
	return s.db.Close()
}

// Ping reports whether the database can be queried.
func (s *DB) Ping(ctx context.Context) error {
	if err := s.Damaged(); err != nil {
		return err
	}
	var one int
	if err := s.db.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return s.classify(ctx, err)
	}
	return nil
}

// clock returns the current time as the store records it: UTC, truncated
// to microseconds (what the schema keeps), so that the times a write puts
// on rec are exactly those a later Get returns.
func (s *DB) clock() time.Time {
	return s.now().UTC().Truncate(time.Microsecond)
}

// write runs fn in a write transaction, one at a time (see DB.writes).
func (s *DB) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := s.Damaged(); err != nil {
		return err // before queueing behind writers that will fail too
	}
	select {
	case s.writes <- struct{}{}:
	case <-ctx.Done():
		return s.classify(ctx, ctx.Err())
	}
	defer func() { <-s.writes }()
	return s.tx(ctx, nil, fn)
}

// read runs fn in a read-only transaction, so that everything fn reads
// comes from one snapshot.
func (s *DB) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.tx(ctx, &sql.TxOptions{ReadOnly: true}, fn)
}

// errRollback, returned by a transaction's fn, rolls back what fn did and
// is no failure: tx returns nil (Try judges a batch this way).
var errRollback = errors.New("sqlite: roll back")

// tx runs fn in a transaction and commits it if fn succeeds, or rolls it
// back if fn returns errRollback. Errors come back classified as
// *gatehouse.Error (or the context's error).
func (s *DB) tx(ctx context.Context, opts *sql.TxOptions, fn func(tx *sql.Tx) error) error {
	if err := s.Damaged(); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return s.classify(ctx, err)
	}
	defer tx.Rollback()

	if err := fn(tx); err != nil {
		if err == errRollback {
			return nil
		}
		return s.classify(ctx, err)
	}
	if err := tx.Commit(); err != nil {
		return s.classify(ctx, err)
	}
	return nil
}

// classify turns err into what the Store contract promises: an
// *gatehouse.Error, or the context's own error when the caller gave up. A
// damaged file marks the store damaged for good.
func (s *DB) classify(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var ge *gatehouse.Error
	if errors.As(err, &ge) {
		return err
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		// The caller gave up; whatever the driver said (often
		// SQLITE_INTERRUPT) is a consequence of that, not an outage.
		return fmt.Errorf("sqlite: %w", ctxErr)
	}
	if errors.Is(err, sql.ErrConnDone) || isClosedDB(err) {
		return gatehouse.Unavailable(err)
	}
	if isCorrupt(err) {
		slog.Error("sqlite: the database file is damaged; restore it from a backup", "error", err)
		s.damaged.CompareAndSwap(nil, &gatehouse.Error{Code: gatehouse.EUNAVAILABLE, Err: err,
			Message: "The configuration store's database file is damaged; an operator must restore it from a backup. Until then every request that needs the store is refused."})
		return s.damaged.Load()
	}
	var se *msqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // primary result code
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR,
			sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY,
			sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOLFS:
			return gatehouse.Unavailable(err)
		case sqlite3.SQLITE_CONSTRAINT:
			switch se.Code() {
			case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
				// The store checks ids and keys before writing, so this
				// means a check was missed; it is still a conflict.
				return gatehouse.Clash(err)
			}
		}
	}
	return gatehouse.Internal(err)
}

// isClosedDB reports whether err is database/sql's error for a closed
// *sql.DB, which it does not export.
func isClosedDB(err error) bool {
	return err != nil && strings.Contains(err.Error(), "sql: database is closed")
}

// querier is what the store's statements run on: a transaction, or a
// stmtCache over one.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

var (
	_ querier = (*sql.Tx)(nil)
	_ querier = (*stmtCache)(nil)
)

// stmtCache runs statements in tx, compiling each distinct query once. A
// batch runs the same few statements thousands of times, and compiling
// them anew was a third of the work of each change. The statements close
// with tx.
type stmtCache struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

func newStmtCache(tx *sql.Tx) *stmtCache {
	return &stmtCache{tx: tx, stmts: make(map[string]*sql.Stmt)}
}

func (c *stmtCache) prepare(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := c.stmts[query]; ok {
		return st, nil
	}
	st, err := c.tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.stmts[query] = st
	return st, nil
}

func (c *stmtCache) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := c.prepare(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (c *stmtCache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := c.prepare(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (c *stmtCache) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := c.prepare(ctx, query)
	if err != nil {
		// A *sql.Row cannot carry an error made outside database/sql:
		// run the query unprepared, which fails the same way.
		return c.tx.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}
