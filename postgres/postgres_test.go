//go:build unix

package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/storetest"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The shared server every test but TestStoppedServerIsUnavailable uses,
// and a pool on its postgres database to create test databases with. Both
// are nil when the tests are skipped.
var (
	shared *pgtest.Server
	admin  *pgxpool.Pool
)

const skipMessage = pgtest.SkipMessage

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	var err error
	shared, err = pgtest.New()
	if errors.Is(err, pgtest.ErrNoBinaries) {
		if pgtest.InCI() {
			fmt.Fprintf(os.Stderr, "postgres tests FAILED: %v; "+
				"CI must install the postgresql package (see .ci/run)\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "\n!!! %s (%v)\n\n", skipMessage, err)
		code := m.Run()
		fmt.Fprintf(os.Stderr, "\n!!! %s\n\n", skipMessage)
		return code
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "postgres tests FAILED: cannot start PostgreSQL: %v\n", err)
		return 1
	}
	defer shared.Close()
	admin, err = pgxpool.New(context.Background(), shared.DSN("postgres"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "postgres tests FAILED: %v\n", err)
		return 1
	}
	defer admin.Close()
	return m.Run()
}

// needServer skips t when there is no PostgreSQL to test against (and CI
// is not asking for one: TestMain fails then).
func needServer(t testing.TB) {
	t.Helper()
	if shared == nil {
		t.Skip(skipMessage)
	}
}

var dbCounter atomic.Int64

// newDatabase creates an empty database on the shared server and returns
// its DSN.
func newDatabase(t testing.TB) string {
	t.Helper()
	needServer(t)
	name := fmt.Sprintf("t_%d", dbCounter.Add(1))
	if _, err := admin.Exec(context.Background(), `CREATE DATABASE `+name+` TEMPLATE template0`); err != nil {
		t.Fatalf("CREATE DATABASE %s: %v", name, err)
	}
	t.Cleanup(func() {
		// WITH (FORCE) ends sessions a failed test may have left.
		if _, err := admin.Exec(context.Background(), `DROP DATABASE `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("DROP DATABASE %s: %v", name, err)
		}
	})
	return shared.DSN(name)
}

func openTest(t testing.TB, dsn string, opts Options) *DB {
	t.Helper()
	db, err := Open(t.Context(), dsn, opts)
	if err != nil {
		t.Fatalf("Open: got %v; want success", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestStore(t *testing.T) {
	needServer(t)
	storetest.Run(t, func(t *testing.T, now func() time.Time, retention time.Duration) gatehouse.Store {
		return openTest(t, newDatabase(t), Options{Now: now, TombstoneRetention: retention})
	})
}

func svc(id string) *gatehouse.Record {
	return &gatehouse.Record{Kind: gatehouse.KindService, ID: id, Body: []byte(`{}`)}
}

func TestMigrationsAreIdempotentAndConcurrent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := newDatabase(t)

	// Several nodes start at once on a new database: all open, and the
	// migrations run once.
	const nodes = 6
	dbs := make([]*DB, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() { dbs[i], errs[i] = Open(ctx, dsn, Options{}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Open %d: got %v; want success", i, err)
		}
		defer dbs[i].Close()
	}
	checkMigrations := func(what string, db *DB) {
		t.Helper()
		var applied, distinct, maxVersion int
		if err := db.pool.QueryRow(ctx,
			`SELECT COUNT(*), COUNT(DISTINCT version), MAX(version) FROM schema_migrations`).Scan(&applied, &distinct, &maxVersion); err != nil {
			t.Fatal(err)
		}
		if applied != len(migrations) || distinct != len(migrations) || maxVersion != len(migrations) {
			t.Errorf("%s: got %d migrations (%d distinct) up to %d; want each of 1..%d once",
				what, applied, distinct, maxVersion, len(migrations))
		}
	}
	checkMigrations("after concurrent Opens", dbs[0])

	// All nodes see one store.
	s1 := &gatehouse.Record{Kind: gatehouse.KindService, ID: "s1", Unique: []string{"name:s1"}, Body: []byte(`{"ü":1}`)}
	if err := dbs[0].Create(ctx, s1); err != nil {
		t.Fatal(err)
	}
	if err := dbs[1].Delete(ctx, gatehouse.KindService, "s1", 0); err != nil {
		t.Fatal(err)
	}
	s2 := svc("s2")
	if err := dbs[2].Create(ctx, s2); err != nil {
		t.Fatal(err)
	}
	for _, db := range dbs {
		db.Close()
	}

	// Reopening finds nothing to do, and the data and the sequences carry
	// on from where they were.
	last := s2.Version
	for i := range 2 {
		db := openTest(t, dsn, Options{})
		checkMigrations(fmt.Sprintf("reopen %d", i), db)
		if _, err := db.Get(ctx, gatehouse.KindService, "s2"); err != nil {
			t.Fatalf("reopen %d: Get(s2): got %v; want success", i, err)
		}
		if _, err := db.Get(ctx, gatehouse.KindService, "s1"); gatehouse.ErrorCode(err) != gatehouse.EGONE {
			t.Errorf("reopen %d: Get(s1): got %v; want %s (tombstone kept)", i, err, gatehouse.EGONE)
		}
		r := &gatehouse.Record{Kind: gatehouse.KindRoute, ID: fmt.Sprintf("r%d", i), Body: []byte(`{}`)}
		if err := db.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		if r.Version <= last {
			t.Errorf("reopen %d: got new version %d; want > %d", i, r.Version, last)
		}
		last = r.Version
		db.Close()
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	t.Parallel()
	dsn := newDatabase(t)
	db := openTest(t, dsn, Options{})
	if _, err := db.pool.Exec(t.Context(), `INSERT INTO schema_migrations (version) VALUES ($1)`, len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err := Open(t.Context(), dsn, Options{})
	if err == nil {
		db.Close()
		t.Fatalf("Open of a newer schema: got success; want an error")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a newer schema: got %v; want it to say the schema is newer", err)
	}
}

func TestNonUTF8DatabaseIsRefused(t *testing.T) {
	t.Parallel()
	needServer(t)
	name := fmt.Sprintf("t_%d", dbCounter.Add(1))
	if _, err := admin.Exec(t.Context(), `CREATE DATABASE `+name+
		` TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec(context.Background(), `DROP DATABASE `+name+` WITH (FORCE)`) })
	db, err := Open(t.Context(), shared.DSN(name), Options{})
	if err == nil {
		db.Close()
		t.Fatalf("Open of a LATIN1 database: got success; want an error")
	}
	if !strings.Contains(err.Error(), "UTF8") {
		t.Errorf("Open of a LATIN1 database: got %v; want it to name the encoding", err)
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	t.Parallel()
	if _, err := Open(t.Context(), "postgres://127.0.0.1:1/x", Options{TombstoneRetention: -time.Second}); err == nil {
		t.Errorf("Open with negative retention: got success; want an error")
	}
	const secret = "hunter2"
	_, err := Open(t.Context(), "postgres://u:"+secret+"@127.0.0.1:1/x?pool_max_conns=nope", Options{})
	if err == nil {
		t.Fatalf("Open with a bad DSN: got success; want an error")
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("Open with a bad DSN: got %v; want the password masked", err)
	}
}

func TestSchemasAreIndependentStores(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := newDatabase(t)
	db := openTest(t, dsn, Options{})
	for _, schema := range []string{"a", "b"} {
		if _, err := db.pool.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
			t.Fatal(err)
		}
	}
	a := openTest(t, dsn+"&search_path=a", Options{})
	b := openTest(t, dsn+"&search_path=b", Options{})
	for _, s := range []*DB{a, b} {
		if err := s.Create(ctx, svc("s1")); err != nil {
			t.Fatalf("Create in each schema: got %v; want success", err)
		}
	}
	if err := a.Delete(ctx, gatehouse.KindService, "s1", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, gatehouse.KindService, "s1"); err != nil {
		t.Errorf("Get in b after Delete in a: got %v; want success", err)
	}
	if n, err := db.Count(ctx, gatehouse.KindService); err != nil || n != 0 {
		t.Errorf("Count in public: got %d, %v; want 0, nil", n, err)
	}
}

// calls is every Store method, as a call returning only its error.
func calls(ctx context.Context, db gatehouse.Store) []struct {
	name string
	call func() error
} {
	rec := &gatehouse.Record{Kind: gatehouse.KindService, ID: "s2", Body: []byte(`{}`)}
	return []struct {
		name string
		call func() error
	}{
		{"Ping", func() error { return db.Ping(ctx) }},
		{"Create", func() error { return db.Create(ctx, rec) }},
		{"Get", func() error { _, err := db.Get(ctx, gatehouse.KindService, "s1"); return err }},
		{"Lookup", func() error { _, err := db.Lookup(ctx, gatehouse.KindService, "k"); return err }},
		{"Update", func() error { return db.Update(ctx, rec, 1) }},
		{"Delete", func() error { return db.Delete(ctx, gatehouse.KindService, "s1", 0) }},
		{"List", func() error { _, err := db.List(ctx, gatehouse.KindService, gatehouse.ListOptions{}); return err }},
		{"Snapshot", func() error { _, err := db.Snapshot(ctx, gatehouse.Kinds...); return err }},
		{"Count", func() error { _, err := db.Count(ctx, gatehouse.KindService); return err }},
		{"Apply", func() error { return db.Apply(ctx, []gatehouse.Change{{Op: gatehouse.OpCreate, Record: rec}}, "") }},
		{"DraftTag", func() error { _, err := db.DraftTag(ctx); return err }},
	}
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTest(t, newDatabase(t), Options{})
	if err := db.Create(ctx, svc("s1")); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: got %v; want success", err)
	}
	for _, tc := range calls(ctx, db) {
		if got := gatehouse.ErrorCode(tc.call()); got != gatehouse.EUNAVAILABLE {
			t.Errorf("%s after Close: got %s; want %s", tc.name, got, gatehouse.EUNAVAILABLE)
		}
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: got %v; want success", err)
	}
}

func TestCanceledContextPassesThrough(t *testing.T) {
	t.Parallel()
	db := openTest(t, newDatabase(t), Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, tc := range calls(ctx, db) {
		err := tc.call()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: got %v; want context.Canceled", tc.name, err)
		}
		if code := gatehouse.ErrorCode(err); code == gatehouse.EUNAVAILABLE {
			t.Errorf("%s with a canceled context: got %s; want not %s", tc.name, code, gatehouse.EUNAVAILABLE)
		}
		if errors.As(err, new(*gatehouse.ChangeError)) {
			t.Errorf("%s with a canceled context: got %v; want no change named (the change is not at fault)", tc.name, err)
		}
	}
	n, err := db.Count(t.Context(), gatehouse.KindService)
	if err != nil || n != 0 {
		t.Errorf("Count after canceled Create: got %d, %v; want 0, nil", n, err)
	}
}

func TestDeadlineDuringLockWaitPassesThrough(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := newDatabase(t)
	db := openTest(t, dsn, Options{})
	s1 := svc("s1")
	if err := db.Create(ctx, s1); err != nil {
		t.Fatal(err)
	}
	// Another session holds s1's row lock.
	other, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT 1 FROM records WHERE id = 's1' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	err = db.Update(short, svc("s1"), s1.Version)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Update waiting for a lock past its deadline: got %v; want context.DeadlineExceeded", err)
	}
	tx.Rollback(ctx)
	if err := db.Update(ctx, svc("s1"), s1.Version); err != nil {
		t.Errorf("Update once the lock is released: got %v; want success", err)
	}
}

// TestTerminatedSessionsRecover ends the store's server sessions, as a
// failover or an administrator would. The pool still holds the dead
// connections; the store must not fail calls because of them (it retries
// on a fresh connection, as nothing was committed), and never with
// anything but EUNAVAILABLE.
func TestTerminatedSessionsRecover(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := newDatabase(t)
	db := openTest(t, dsn, Options{})
	if err := db.Create(ctx, svc("s1")); err != nil {
		t.Fatal(err)
	}
	dbName := dsn[strings.LastIndex(dsn, "/")+1 : strings.Index(dsn, "?")]
	for round := range 3 {
		// Fill the pool with connections, all to be ended.
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() { db.Get(ctx, gatehouse.KindService, "s1") })
		}
		wg.Wait()
		var ended int
		if err := admin.QueryRow(ctx, `SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = $1`, dbName).Scan(&ended); err != nil {
			t.Fatal(err)
		}
		if ended == 0 {
			t.Fatalf("round %d: terminated no session of %s; want the store's", round, dbName)
		}
		// Let the server finish ending them.
		time.Sleep(50 * time.Millisecond)
		for _, tc := range calls(ctx, db) {
			err := tc.call()
			switch code := gatehouse.ErrorCode(err); {
			case err == nil, code == gatehouse.ENOTFOUND, code == gatehouse.EGONE, code == gatehouse.EPRECONDITION, code == gatehouse.ECONFLICT:
				// What the call answers with a healthy connection.
			case code == gatehouse.EUNAVAILABLE:
				t.Errorf("round %d: %s after %d sessions were ended: got %v; want the store to retry on a fresh connection", round, tc.name, ended, err)
			default:
				t.Fatalf("round %d: %s after %d sessions were ended: got %s (%v); want success", round, tc.name, ended, code, err)
			}
		}
		if err := db.Create(ctx, svc(fmt.Sprintf("r%d", round))); err != nil {
			t.Errorf("round %d: Create after recovery: got %v; want success", round, err)
		}
	}
}

// TestStoppedServerIsUnavailable stops its own server: every call fails
// with EUNAVAILABLE, as does Open; once the server is back, the same store
// works again.
func TestStoppedServerIsUnavailable(t *testing.T) {
	needServer(t)
	t.Parallel()
	ctx := t.Context()
	srv := pgtest.Start(t)
	db := openTest(t, srv.DSN("postgres"), Options{})
	if err := db.Create(ctx, svc("s1")); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	for _, tc := range calls(ctx, db) {
		if err := tc.call(); gatehouse.ErrorCode(err) != gatehouse.EUNAVAILABLE {
			t.Errorf("%s with the server stopped: got %s (%v); want %s", tc.name, gatehouse.ErrorCode(err), err, gatehouse.EUNAVAILABLE)
		}
	}
	if other, err := Open(ctx, srv.DSN("postgres"), Options{}); err == nil {
		other.Close()
		t.Errorf("Open with the server stopped: got success; want an error")
	} else if gatehouse.ErrorCode(err) != gatehouse.EUNAVAILABLE {
		t.Errorf("Open with the server stopped: got %s (%v); want %s", gatehouse.ErrorCode(err), err, gatehouse.EUNAVAILABLE)
	}

	if err := srv.Restart(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if err := db.Ping(ctx); err != nil {
		t.Errorf("Ping after restart: got %v; want success", err)
	}
	if _, err := db.Get(ctx, gatehouse.KindService, "s1"); err != nil {
		t.Errorf("Get after restart: got %v; want success", err)
	}
}

// TestDeleteRacingANewUseIsOrdered races deleting a record against writes
// that start using it (as a ref or as a parent): either the write sees the
// record gone, or the delete sees the use. Never both succeed, leaving a
// use of a deleted record.
func TestDeleteRacingANewUseIsOrdered(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTest(t, newDatabase(t), Options{})
	route := &gatehouse.Record{Kind: gatehouse.KindRoute, ID: "moving", Body: []byte(`{}`)}
	if err := db.Create(ctx, route); err != nil {
		t.Fatal(err)
	}
	var outcomes sync.Map
	for i := range 15 {
		for _, tc := range []struct {
			name   string
			target gatehouse.Kind
			write  func(target string) error
		}{
			{"Create with a ref", gatehouse.KindService, func(target string) error {
				r := &gatehouse.Record{Kind: gatehouse.KindRoute, ID: "r-" + target, Body: []byte(`{}`),
					Refs: []gatehouse.Ref{{Kind: gatehouse.KindService, ID: target}}}
				return db.Create(ctx, r)
			}},
			{"Update adding a ref", gatehouse.KindService, func(target string) error {
				cur, err := db.Get(ctx, gatehouse.KindRoute, "moving")
				if err != nil {
					return err
				}
				cur.Refs = []gatehouse.Ref{{Kind: gatehouse.KindService, ID: target}}
				return db.Update(ctx, cur, cur.Version)
			}},
			{"Create of a child", gatehouse.KindConsumer, func(target string) error {
				r := &gatehouse.Record{Kind: gatehouse.KindCredential, ID: "k-" + target, Body: []byte(`{}`),
					Parent: &gatehouse.Ref{Kind: gatehouse.KindConsumer, ID: target}}
				return db.Create(ctx, r)
			}},
		} {
			target := fmt.Sprintf("x%d-%s", i, strings.ReplaceAll(tc.name, " ", "-"))
			if err := db.Create(ctx, &gatehouse.Record{Kind: tc.target, ID: target, Body: []byte(`{}`)}); err != nil {
				t.Fatal(err)
			}
			var delErr, writeErr error
			var wg sync.WaitGroup
			start := make(chan struct{})
			wg.Go(func() { <-start; delErr = db.Delete(ctx, tc.target, target, 0) })
			wg.Go(func() { <-start; writeErr = tc.write(target) })
			close(start)
			wg.Wait()

			delCode, writeCode := gatehouse.ErrorCode(delErr), gatehouse.ErrorCode(writeErr)
			switch {
			case delErr == nil && writeCode == gatehouse.EUNPROCESSABLE:
				outcomes.Store(tc.name+": delete first", true)
			case writeErr == nil && delCode == gatehouse.ECONFLICT && tc.target == gatehouse.KindService:
				outcomes.Store(tc.name+": write first", true)
			case writeErr == nil && delErr == nil && tc.target == gatehouse.KindConsumer:
				// A child does not block its parent's delete: it goes too.
				if _, err := db.Get(ctx, gatehouse.KindCredential, "k-"+target); gatehouse.ErrorCode(err) != gatehouse.EGONE {
					t.Fatalf("%s, round %d: child survived its parent's delete: Get got %v; want %s", tc.name, i, err, gatehouse.EGONE)
				}
				outcomes.Store(tc.name+": write first", true)
			default:
				t.Fatalf("%s, round %d: got delete %v, write %v; want one to win and the other to fail consistently",
					tc.name, i, delErr, writeErr)
			}
			// Whatever happened, what is left is consistent: a record in
			// use cannot be deleted, and one not in use can.
			if err := db.Delete(ctx, tc.target, target, 0); err != nil && gatehouse.ErrorCode(err) != gatehouse.EGONE &&
				gatehouse.ErrorCode(err) != gatehouse.ECONFLICT {
				t.Fatalf("%s, round %d: cleanup Delete: %v", tc.name, i, err)
			}
		}
	}
	var seen []string
	outcomes.Range(func(k, _ any) bool { seen = append(seen, k.(string)); return true })
	t.Logf("outcomes seen: %v", seen)
}

// TestDeleteWaitsForAWriterUsingTheRecord is the deterministic half of the
// race above: a writer that has locked the record it points at (as Create
// does) holds up a Delete, which then sees the new use.
func TestDeleteWaitsForAWriterUsingTheRecord(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := newDatabase(t)
	db := openTest(t, dsn, Options{})
	for _, r := range []*gatehouse.Record{svc("s1"), {Kind: gatehouse.KindRoute, ID: "r1", Body: []byte(`{}`)}} {
		if err := db.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	other, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT 1 FROM records WHERE kind = 'services' AND id = 's1' FOR KEY SHARE`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- db.Delete(ctx, gatehouse.KindService, "s1", 0) }()
	select {
	case err := <-done:
		t.Fatalf("Delete while a writer holds the record: got %v before the writer finished; want it to wait", err)
	case <-time.After(200 * time.Millisecond):
	}
	if _, err := tx.Exec(ctx, `INSERT INTO record_refs (record_seq, pos, ref_kind, ref_id)
		SELECT seq, 0, 'services', 's1' FROM records WHERE kind = 'routes' AND id = 'r1'`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	err = <-done
	if gatehouse.ErrorCode(err) != gatehouse.ECONFLICT {
		t.Fatalf("Delete after the writer committed a use: got %v; want %s", err, gatehouse.ECONFLICT)
	}
	if msg := gatehouse.ErrorMessage(err); !strings.Contains(msg, `"r1"`) {
		t.Errorf("Delete after the writer committed a use: got message %q; want it to name r1", msg)
	}
}

// TestConflictMessagesMatchSQLite pins the client-visible messages, which
// the admin API shows, to SQLite's.
func TestConflictMessagesMatchSQLite(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTest(t, newDatabase(t), Options{})
	a := svc("a")
	a.Unique = []string{"name:a"}
	if err := db.Create(ctx, a); err != nil {
		t.Fatal(err)
	}
	r := &gatehouse.Record{Kind: gatehouse.KindRoute, ID: "r1", Body: []byte(`{}`),
		Refs: []gatehouse.Ref{{Kind: gatehouse.KindService, ID: "a"}}, Unique: []string{"match:GET /x"}}
	if err := db.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	b := svc("b")
	b.Unique = []string{"name:a"}
	r3 := &gatehouse.Record{Kind: gatehouse.KindRoute, ID: "r3", Body: []byte(`{}`), Unique: []string{"match:GET /x"}}
	nameTaken := gatehouse.KeyTaken(gatehouse.KindService, "name:a", "a")
	routeTaken := gatehouse.KeyTaken(gatehouse.KindRoute, "match:GET /x", "r1")
	missing := &gatehouse.Record{Kind: gatehouse.KindRoute, ID: "r2", Body: []byte(`{}`),
		Refs: []gatehouse.Ref{{Kind: gatehouse.KindService, ID: "zz"}}}
	for _, tc := range []struct {
		name   string
		err    error
		code   gatehouse.Code
		msg    string
		fields []gatehouse.FieldError
	}{
		{"existing id", db.Create(ctx, svc("a")), gatehouse.ECONFLICT, `services "a" already exists`, nil},
		{"taken name", db.Create(ctx, b), gatehouse.ECONFLICT, nameTaken.Message, nameTaken.Fields},
		{"taken match", db.Create(ctx, r3), gatehouse.ECONFLICT, routeTaken.Message, routeTaken.Fields},
		{"missing ref", db.Create(ctx, missing), gatehouse.EUNPROCESSABLE, `services "zz" does not exist`, nil},
		{"in use", db.Delete(ctx, gatehouse.KindService, "a", 0), gatehouse.ECONFLICT, `services "a" is still used by routes "r1"`, nil},
		{"stale", db.Delete(ctx, gatehouse.KindService, "a", a.Version+100), gatehouse.EPRECONDITION,
			fmt.Sprintf(`services "a" is at version %d, not %d`, a.Version, a.Version+100), nil},
		{"not found", db.Delete(ctx, gatehouse.KindService, "nope", 0), gatehouse.ENOTFOUND, `services "nope" does not exist`, nil},
		{"lookup", func() error { _, err := db.Lookup(ctx, gatehouse.KindService, "k"); return err }(),
			gatehouse.ENOTFOUND, `no services holds "k"`, nil},
	} {
		if got := gatehouse.ErrorCode(tc.err); got != tc.code {
			t.Errorf("%s: got %s (%v); want %s", tc.name, got, tc.err, tc.code)
		}
		if got := gatehouse.ErrorMessage(tc.err); got != tc.msg {
			t.Errorf("%s: got message %q; want %q", tc.name, got, tc.msg)
		}
		if got := gatehouse.ErrorFields(tc.err); !reflect.DeepEqual(got, tc.fields) {
			t.Errorf("%s: got fields %v; want %v", tc.name, got, tc.fields)
		}
	}
}

// TestSeqFollowsCommitOrder checks what the create lock is for: a Create
// that commits after another has a higher seq, so that List cursors never
// skip a record committed after the page was read.
func TestSeqFollowsCommitOrder(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTest(t, newDatabase(t), Options{})
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := db.Create(ctx, svc(fmt.Sprintf("s%02d", i))); err != nil {
				t.Error(err)
			}
		})
	}
	// A reader paging concurrently sees each record exactly once.
	seen := map[string]int{}
	var after int64
	for deadline := time.Now().Add(20 * time.Second); len(seen) < n && time.Now().Before(deadline); {
		p, err := db.List(ctx, gatehouse.KindService, gatehouse.ListOptions{After: after, Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Records {
			seen[r.ID]++
		}
		if p.Next != 0 {
			after = p.Next
		} else if len(p.Records) > 0 {
			// The last page: continue after its last record.
			var seq int64
			if err := db.pool.QueryRow(ctx, `SELECT seq FROM records WHERE kind = 'services' AND id = $1`,
				p.Records[len(p.Records)-1].ID).Scan(&seq); err != nil {
				t.Fatal(err)
			}
			after = seq
		}
	}
	wg.Wait()
	for id, c := range seen {
		if c != 1 {
			t.Errorf("paging saw %s %d times; want once", id, c)
		}
	}
	if len(seen) != n {
		t.Errorf("paging while %d creates ran saw %d of them; want all", n, len(seen))
	}
}

func TestClassify(t *testing.T) {
	db := &DB{}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		err  error
		want gatehouse.Code
	}{
		{"unique violation", &pgconn.PgError{Code: "23505"}, gatehouse.ECONFLICT},
		{"foreign key violation", &pgconn.PgError{Code: "23503"}, gatehouse.EINTERNAL},
		{"serialization failure", &pgconn.PgError{Code: "40001"}, gatehouse.EUNAVAILABLE},
		{"deadlock", &pgconn.PgError{Code: "40P01"}, gatehouse.EUNAVAILABLE},
		{"connection failure", &pgconn.PgError{Code: "08006"}, gatehouse.EUNAVAILABLE},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, gatehouse.EUNAVAILABLE},
		{"crash shutdown", &pgconn.PgError{Code: "57P02"}, gatehouse.EUNAVAILABLE},
		{"cannot connect now", &pgconn.PgError{Code: "57P03"}, gatehouse.EUNAVAILABLE},
		{"too many connections", &pgconn.PgError{Code: "53300"}, gatehouse.EUNAVAILABLE},
		{"disk full", &pgconn.PgError{Code: "53100"}, gatehouse.EUNAVAILABLE},
		{"read-only standby", &pgconn.PgError{Code: "25006"}, gatehouse.EUNAVAILABLE},
		{"syntax error", &pgconn.PgError{Code: "42601"}, gatehouse.EINTERNAL},
		{"undefined table", &pgconn.PgError{Code: "42P01"}, gatehouse.EINTERNAL},
		{"wrapped PgError", fmt.Errorf("x: %w", &pgconn.PgError{Code: "57P01"}), gatehouse.EUNAVAILABLE},
		{"connect error", &pgconn.ConnectError{}, gatehouse.EUNAVAILABLE},
		{"dial refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, gatehouse.EUNAVAILABLE},
		{"unexpected EOF", fmt.Errorf("receive: %w", io.ErrUnexpectedEOF), gatehouse.EUNAVAILABLE},
		{"conn closed", fmt.Errorf("x: %w", pgconn.ErrConnClosed), gatehouse.EUNAVAILABLE},
		{"anything else", errors.New("boom"), gatehouse.EINTERNAL},
		{"a store error", gatehouse.Errorf(gatehouse.EGONE, "gone"), gatehouse.EGONE},
	} {
		if got := gatehouse.ErrorCode(db.classify(ctx, tc.err)); got != tc.want {
			t.Errorf("classify(%s): got %s; want %s", tc.name, got, tc.want)
		}
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	err := db.classify(canceled, &pgconn.PgError{Code: "57014"})
	if !errors.Is(err, context.Canceled) || gatehouse.ErrorCode(err) != gatehouse.EINTERNAL {
		t.Errorf("classify with a canceled context: got %v; want context.Canceled, passed through", err)
	}
}

func TestDefaultRetentionIsADay(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var mu sync.Mutex
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	now := base
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	db := openTest(t, newDatabase(t), Options{Now: clock})
	if err := db.Create(ctx, svc("s1")); err != nil {
		t.Fatal(err)
	}
	if err := db.Delete(ctx, gatehouse.KindService, "s1", 0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		after time.Duration
		want  gatehouse.Code
	}{
		{23 * time.Hour, gatehouse.EGONE},
		{25 * time.Hour, gatehouse.ENOTFOUND},
	} {
		mu.Lock()
		now = base.Add(tc.after)
		mu.Unlock()
		_, err := db.Get(ctx, gatehouse.KindService, "s1")
		if got := gatehouse.ErrorCode(err); got != tc.want {
			t.Errorf("Get %v after Delete: got %s; want %s", tc.after, got, tc.want)
		}
	}
}

// BenchmarkStore runs the benchmarks every store shares.
func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) gatehouse.Store { return openTest(b, newDatabase(b), Options{}) })
}
