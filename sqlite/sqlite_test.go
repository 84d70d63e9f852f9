package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/sqlitetest"
	"github.com/gatehouse/gatehouse/storetest"
)

func openTest(t testing.TB, path string, opts Options) *DB {
	t.Helper()
	db, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s): got %v; want success", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time, retention time.Duration) gatehouse.Store {
		return openTest(t, filepath.Join(t.TempDir(), "gatehouse.db"),
			Options{Now: now, TombstoneRetention: retention})
	})
}

func TestOpenCreatesParentDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "gatehouse.db")
	db := openTest(t, path, Options{})
	if err := db.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: got %v; want success", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Stat(%s): got %v; want the file to exist", path, err)
	}
}

func TestOpenRejectsNonFilePaths(t *testing.T) {
	for _, path := range []string{"", ":memory:", "file:x.db", filepath.Join(t.TempDir(), "x?.db")} {
		if db, err := Open(path, Options{}); err == nil {
			db.Close()
			t.Errorf("Open(%q): got success; want an error", path)
		}
	}
	if _, err := Open(filepath.Join(t.TempDir(), "x.db"), Options{TombstoneRetention: -time.Second}); err == nil {
		t.Errorf("Open with negative retention: got success; want an error")
	}
}

func TestReopenKeepsDataAndMigrationsAreIdempotent(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "gatehouse.db")

	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc := &gatehouse.Record{Kind: gatehouse.KindService, ID: "s1", Unique: []string{"name:s1"}, Body: []byte(`{"ü":1}`)}
	if err := db.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if err := db.Delete(ctx, gatehouse.KindService, "s1", 0); err != nil {
		t.Fatal(err)
	}
	if err := db.Create(ctx, &gatehouse.Record{Kind: gatehouse.KindService, ID: "s2", Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: got %v; want success", err)
	}

	for i := range 2 {
		db := openTest(t, path, Options{})
		var applied, maxVersion int
		if err := db.db.QueryRowContext(ctx, `SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&applied, &maxVersion); err != nil {
			t.Fatal(err)
		}
		if applied != len(migrations) || maxVersion != len(migrations) {
			t.Errorf("reopen %d: got %d migrations up to %d; want %d", i, applied, maxVersion, len(migrations))
		}
		got, err := db.Get(ctx, gatehouse.KindService, "s2")
		if err != nil {
			t.Fatalf("reopen %d: Get(s2): got %v; want success", i, err)
		}
		if got.Version <= svc.Version {
			t.Errorf("reopen %d: got s2 at version %d; want > %d", i, got.Version, svc.Version)
		}
		if _, err := db.Get(ctx, gatehouse.KindService, "s1"); gatehouse.ErrorCode(err) != gatehouse.EGONE {
			t.Errorf("reopen %d: Get(s1): got %v; want %s (tombstone kept)", i, err, gatehouse.EGONE)
		}
		// The sequence carries on from where it was, across reopens.
		r := &gatehouse.Record{Kind: gatehouse.KindRoute, ID: fmt.Sprintf("r%d", i), Body: []byte(`{}`)}
		if err := db.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		if r.Version <= got.Version {
			t.Errorf("reopen %d: got new version %d; want > %d", i, r.Version, got.Version)
		}
		db.Close()
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	db := openTest(t, path, Options{})
	if _, err := db.db.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db, err := Open(path, Options{}); err == nil {
		db.Close()
		t.Fatalf("Open of a newer schema: got success; want an error")
	}
}

func TestPragmasApplyToEveryConnection(t *testing.T) {
	ctx := t.Context()
	db := openTest(t, filepath.Join(t.TempDir(), "gatehouse.db"), Options{})

	// Hold several connections at once, so that the pool has to open new
	// ones, and check each.
	const n = 4
	conns := make([]*sql.Conn, n)
	for i := range conns {
		c, err := db.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	for i, c := range conns {
		for _, tc := range []struct {
			pragma, want string
		}{
			{"journal_mode", "wal"},
			{"synchronous", "2"}, // FULL
			{"foreign_keys", "1"},
			{"busy_timeout", fmt.Sprint(busyTimeout.Milliseconds())},
		} {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+tc.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("connection %d: got %s = %s; want %s", i, tc.pragma, got, tc.want)
			}
		}
	}
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	ctx := t.Context()
	db := openTest(t, filepath.Join(t.TempDir(), "gatehouse.db"), Options{})
	if err := db.Create(ctx, &gatehouse.Record{Kind: gatehouse.KindService, ID: "s1", Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: got %v; want success", err)
	}

	rec := &gatehouse.Record{Kind: gatehouse.KindService, ID: "s2", Body: []byte(`{}`)}
	for _, tc := range []struct {
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
		{"Count", func() error { _, err := db.Count(ctx, gatehouse.KindService); return err }},
		{"Apply", func() error { return db.Apply(ctx, []gatehouse.Change{{Op: gatehouse.OpCreate, Record: rec}}, "") }},
		{"DraftTag", func() error { _, err := db.DraftTag(ctx); return err }},
	} {
		if got := gatehouse.ErrorCode(tc.call()); got != gatehouse.EUNAVAILABLE {
			t.Errorf("%s after Close: got %s; want %s", tc.name, got, gatehouse.EUNAVAILABLE)
		}
	}
}

func TestLockedDatabaseIsUnavailable(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	db, err := open(path, Options{}, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	// Another process (here: another pool) holds the write lock.
	other, err := sql.Open("sqlite", dsn(path, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.BeginTx(ctx, nil) // BEGIN IMMEDIATE
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()

	err = db.Create(ctx, &gatehouse.Record{Kind: gatehouse.KindService, ID: "s1", Body: []byte(`{}`)})
	if got := gatehouse.ErrorCode(err); got != gatehouse.EUNAVAILABLE {
		t.Errorf("Create while another holds the write lock: got %s (%v); want %s", got, err, gatehouse.EUNAVAILABLE)
	}
	// Readers are not blocked by a writer.
	if _, err := db.Count(ctx, gatehouse.KindService); err != nil {
		t.Errorf("Count while another holds the write lock: got %v; want success", err)
	}
	tx.Rollback()
	if err := db.Create(ctx, &gatehouse.Record{Kind: gatehouse.KindService, ID: "s1", Body: []byte(`{}`)}); err != nil {
		t.Errorf("Create once the lock is released: got %v; want success", err)
	}
}

func TestCanceledContextPassesThrough(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "gatehouse.db"), Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"Create", func() error {
			return db.Create(ctx, &gatehouse.Record{Kind: gatehouse.KindService, ID: "s1", Body: []byte(`{}`)})
		}},
		{"Get", func() error { _, err := db.Get(ctx, gatehouse.KindService, "s1"); return err }},
		{"List", func() error { _, err := db.List(ctx, gatehouse.KindService, gatehouse.ListOptions{}); return err }},
		{"Ping", func() error { return db.Ping(ctx) }},
		{"Apply", func() error {
			return db.Apply(ctx, []gatehouse.Change{{Op: gatehouse.OpCreate, Record: &gatehouse.Record{Kind: gatehouse.KindService, ID: "s1", Body: []byte(`{}`)}}}, "")
		}},
		{"DraftTag", func() error { _, err := db.DraftTag(ctx); return err }},
	} {
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

func TestWriterWaitingForLockHonoursContext(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "gatehouse.db"), Options{})
	db.writes <- struct{}{} // a long write in progress
	defer func() { <-db.writes }()

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	err := db.Create(ctx, &gatehouse.Record{Kind: gatehouse.KindService, ID: "s1", Body: []byte(`{}`)})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Create queued behind a write past its deadline: got %v; want context.DeadlineExceeded", err)
	}
}

func TestDefaultRetentionIsADay(t *testing.T) {
	ctx := t.Context()
	var mu sync.Mutex
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	db := openTest(t, filepath.Join(t.TempDir(), "gatehouse.db"), Options{Now: clock})
	if err := db.Create(ctx, &gatehouse.Record{Kind: gatehouse.KindService, ID: "s1", Body: []byte(`{}`)}); err != nil {
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
		now = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).Add(tc.after)
		mu.Unlock()
		_, err := db.Get(ctx, gatehouse.KindService, "s1")
		if got := gatehouse.ErrorCode(err); got != tc.want {
			t.Errorf("Get %v after Delete: got %s; want %s", tc.after, got, tc.want)
		}
	}
}

// BenchmarkStore runs the benchmarks every store shares.
func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) gatehouse.Store {
		return openTest(b, filepath.Join(b.TempDir(), "gatehouse.db"), Options{})
	})
}

// fill writes enough records that every index has its own pages.
func fill(t *testing.T, db *DB) {
	t.Helper()
	for i := range 50 {
		id := fmt.Sprintf("c%d", i)
		rec := &gatehouse.Record{Kind: gatehouse.KindConsumer, ID: id, Name: id, Unique: []string{"name:" + id}, Body: []byte(`{}`)}
		if err := db.Create(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenRefusesADamagedFileNamingItAndTheRemedy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, db)
	db.Close()
	sqlitetest.CorruptIndex(t, path, "records_kind_name")

	db, err = Open(path, Options{})
	if err == nil {
		db.Close()
		t.Fatal("Open of a damaged file: got success; want an error")
	}
	for _, want := range []string{path, "damaged", "backup", ".recover"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open error %q does not mention %q", err, want)
		}
	}
}

func TestDamageFoundAfterOpenMakesEveryCallUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	db := openTest(t, path, Options{})
	fill(t, db)
	if err := db.Damaged(); err != nil {
		t.Fatalf("Damaged before any damage: got %v; want nil", err)
	}
	sqlitetest.CorruptIndex(t, path, "records_kind_name")

	// A lookup by name goes through the damaged index.
	_, err := db.List(t.Context(), gatehouse.KindConsumer, gatehouse.ListOptions{Filter: gatehouse.Filter{Name: "c7"}})
	if code := gatehouse.ErrorCode(err); code != gatehouse.EUNAVAILABLE {
		t.Fatalf("List through a damaged index: got %v (%s); want %s", err, code, gatehouse.EUNAVAILABLE)
	}
	if !strings.Contains(gatehouse.ErrorMessage(err), "damaged") {
		t.Errorf("message %q does not say the store is damaged", gatehouse.ErrorMessage(err))
	}
	// From then on nothing is answered from the damaged file, not even
	// what would not touch the damaged page.
	if _, err := db.Get(t.Context(), gatehouse.KindConsumer, "c1"); gatehouse.ErrorCode(err) != gatehouse.EUNAVAILABLE {
		t.Errorf("Get after damage was found: got %v; want %s", err, gatehouse.EUNAVAILABLE)
	}
	if err := db.Ping(t.Context()); gatehouse.ErrorCode(err) != gatehouse.EUNAVAILABLE {
		t.Errorf("Ping after damage was found: got %v; want %s", err, gatehouse.EUNAVAILABLE)
	}
	if db.Damaged() == nil {
		t.Error("Damaged: got nil; want the damage found")
	}
}
