package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations is the schema history. Entry i is schema version i+1. Append
// only: an applied migration is never edited, because databases in the field
// have already run it and record only its number.
var migrations = []string{
	// 1: the initial schema.
	`
CREATE TABLE sequence (
	-- One row: the last Version handed out. Every write takes the next
	-- value, store-wide, so a Version is never reused, not even for an id
	-- that is deleted and created again.
	id    INTEGER PRIMARY KEY CHECK (id = 1),
	value INTEGER NOT NULL
);
INSERT INTO sequence (id, value) VALUES (1, 0);

CREATE TABLE records (
	-- AUTOINCREMENT, not plain rowid, so that the seq of a deleted last
	-- record is never handed out again: List cursors (Page.Next) stay valid.
	seq         INTEGER PRIMARY KEY AUTOINCREMENT,
	kind        TEXT    NOT NULL,
	id          TEXT    NOT NULL,
	version     INTEGER NOT NULL,
	created_at  INTEGER NOT NULL, -- unix microseconds, UTC
	updated_at  INTEGER NOT NULL, -- unix microseconds, UTC
	name        TEXT    NOT NULL DEFAULT '',
	parent_kind TEXT,
	parent_id   TEXT,
	secret      BLOB,
	body        BLOB,
	UNIQUE (kind, id),
	CHECK ((parent_kind IS NULL) = (parent_id IS NULL)),
	-- The store deletes children itself (it must tombstone them and check
	-- who uses them); the cascade is the safety net.
	FOREIGN KEY (parent_kind, parent_id) REFERENCES records (kind, id) ON DELETE CASCADE
);
CREATE INDEX records_kind_seq ON records (kind, seq);
CREATE INDEX records_kind_name ON records (kind, name);
CREATE INDEX records_parent ON records (parent_kind, parent_id);
CREATE INDEX records_kind_parent_id ON records (kind, parent_id);

CREATE TABLE record_refs (
	record_seq INTEGER NOT NULL REFERENCES records (seq) ON DELETE CASCADE,
	pos        INTEGER NOT NULL, -- keeps Refs in the order they were written
	ref_kind   TEXT    NOT NULL,
	ref_id     TEXT    NOT NULL,
	PRIMARY KEY (record_seq, pos),
	UNIQUE (record_seq, ref_kind, ref_id),
	-- No action on delete: a record in use cannot go. The store checks
	-- first so that it can name the user; this is the safety net.
	FOREIGN KEY (ref_kind, ref_id) REFERENCES records (kind, id)
);
CREATE INDEX record_refs_target ON record_refs (ref_kind, ref_id);

CREATE TABLE unique_keys (
	kind      TEXT    NOT NULL,
	key       TEXT    NOT NULL,
	owner_seq INTEGER NOT NULL REFERENCES records (seq) ON DELETE CASCADE,
	pos       INTEGER NOT NULL, -- keeps Unique in the order it was written
	PRIMARY KEY (kind, key)
);
CREATE INDEX unique_keys_owner ON unique_keys (owner_seq, pos);

CREATE TABLE tombstones (
	kind       TEXT    NOT NULL,
	id         TEXT    NOT NULL,
	deleted_at INTEGER NOT NULL, -- unix microseconds, UTC
	PRIMARY KEY (kind, id)
);
CREATE INDEX tombstones_deleted_at ON tombstones (deleted_at);
`,
}

// migrate brings the schema up to date. Each migration runs in its own
// write transaction together with the row that records it, so a crash
// leaves the schema at a known version and reopening resumes from there.
// The applied check happens inside that transaction, so two processes
// opening the same new file cannot both apply a migration.
func migrate(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var current int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > len(migrations) {
		// A newer binary has run here; its schema may mean things this
		// one does not know about, so refuse rather than corrupt it.
		return fmt.Errorf("database schema version %d is newer than this build supports (%d)", current, len(migrations))
	}
	for i := current; i < len(migrations); i++ {
		if err := applyMigration(ctx, db, i+1, migrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, version int, script string) error {
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE (see dsn)
	if err != nil {
		return err
	}
	defer tx.Rollback()

	var applied bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?)`, version).Scan(&applied); err != nil {
		return err
	}
	if applied {
		return nil // another process got here first
	}
	if _, err := tx.ExecContext(ctx, script); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, strftime('%s', 'now'))`, version); err != nil {
		return err
	}
	return tx.Commit()
}
