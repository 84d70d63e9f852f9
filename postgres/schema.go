package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// migrations is the schema history. Entry i is schema version i+1. Append
// only: an applied migration is never edited, because databases in the field
// have already run it and record only its number.
var migrations = []string{
	// 1: the initial schema, as SQLite's.
	`
-- The last Version handed out. Every write takes the next value,
-- store-wide, so a Version is never reused, not even for an id that is
-- deleted and created again. Sequences are not transactional: a write that
-- rolls back leaves a gap, never a reuse.
CREATE SEQUENCE record_versions AS bigint;

CREATE TABLE records (
	-- An identity never hands out a value twice, so the seq of a deleted
	-- record is never reused: List cursors (Page.Next) stay valid.
	seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	kind        text        NOT NULL,
	id          text        NOT NULL,
	version     bigint      NOT NULL,
	created_at  timestamptz NOT NULL,
	updated_at  timestamptz NOT NULL,
	name        text        NOT NULL DEFAULT '',
	parent_kind text,
	parent_id   text,
	secret      bytea,
	body        bytea,
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
	record_seq bigint  NOT NULL REFERENCES records (seq) ON DELETE CASCADE,
	pos        integer NOT NULL, -- keeps Refs in the order they were written
	ref_kind   text    NOT NULL,
	ref_id     text    NOT NULL,
	PRIMARY KEY (record_seq, pos),
	UNIQUE (record_seq, ref_kind, ref_id),
	-- No action on delete: a record in use cannot go. The store checks
	-- first so that it can name the user; this is the safety net.
	FOREIGN KEY (ref_kind, ref_id) REFERENCES records (kind, id)
);
CREATE INDEX record_refs_target ON record_refs (ref_kind, ref_id);

CREATE TABLE unique_keys (
	kind      text    NOT NULL,
	key       text    NOT NULL,
	owner_seq bigint  NOT NULL REFERENCES records (seq) ON DELETE CASCADE,
	pos       integer NOT NULL, -- keeps Unique in the order it was written
	PRIMARY KEY (kind, key)
);
CREATE INDEX unique_keys_owner ON unique_keys (owner_seq, pos);

CREATE TABLE tombstones (
	kind       text        NOT NULL,
	id         text        NOT NULL,
	deleted_at timestamptz NOT NULL,
	PRIMARY KEY (kind, id)
);
CREATE INDEX tombstones_deleted_at ON tombstones (deleted_at);
`,
	// 2: NOTIFY on writes of the records nodes wait on (the active
	// deployment, node reports), so that they learn of them at commit
	// instead of at their next poll. The payload is the kind; NOTIFY
	// folds repeats within one transaction.
	`
CREATE FUNCTION gatehouse_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	k text := COALESCE(NEW.kind, OLD.kind);
BEGIN
	IF k IN ('active', 'nodes') THEN
		PERFORM pg_notify('gatehouse_changes', k);
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER records_notify AFTER INSERT OR UPDATE OR DELETE ON records
	FOR EACH ROW EXECUTE FUNCTION gatehouse_notify();
`,
	// 3: a node's heartbeat changes only its last_seen, which nobody waits
	// on (deploy.Watch reads liveness by polling); notifying it made each
	// waiting deployer read every node once per heartbeat of every node.
	`
CREATE OR REPLACE FUNCTION gatehouse_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	k text := COALESCE(NEW.kind, OLD.kind);
BEGIN
	IF k NOT IN ('active', 'nodes') THEN
		RETURN NULL;
	END IF;
	IF k = 'nodes' AND TG_OP = 'UPDATE'
		AND (convert_from(NEW.body, 'UTF8')::jsonb - 'last_seen')
			IS NOT DISTINCT FROM (convert_from(OLD.body, 'UTF8')::jsonb - 'last_seen') THEN
		RETURN NULL;
	END IF;
	PERFORM pg_notify('gatehouse_changes', k);
	RETURN NULL;
END
$$;
`,
}

// Advisory lock keys (pg_advisory_xact_lock), arbitrary constants that
// other applications sharing the database are unlikely to use. Advisory
// locks are per database, not per schema.
const (
	// migrateLock serialises migrations between processes opening the
	// same database at once.
	migrateLock int64 = 0x67617465_6d696772 // "gate" "migr"
	// createLock orders Creates, so that seqs are handed out in commit
	// order (see the package comment).
	createLock int64 = 0x67617465_73657121 // "gate" "seq!"
	// draftLock orders an Apply that checks the draft's tag against
	// every other write of the draft: the Apply takes it exclusively,
	// other writes of draft kinds in shared mode (see DB.Apply).
	draftLock int64 = 0x67617465_64726166 // "gate" "draf"
)

// migrate brings the schema up to date in one transaction, under an
// advisory lock: of several processes opening a new database at once, the
// first applies every migration and the others, once it has committed,
// find nothing left to do. A failed migration leaves the schema as it was.
func (s *DB) migrate(ctx context.Context) error {
	// refused is why this database cannot be used by this build; it is
	// returned as it is rather than classified as an internal error.
	var refused error
	err := s.retry(ctx, func() error {
		return s.inTx(ctx, writeTx, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLock); err != nil {
				return err
			}
			var encoding string
			if err := tx.QueryRow(ctx, `SHOW server_encoding`).Scan(&encoding); err != nil {
				return err
			}
			if encoding != "UTF8" {
				// Records hold any Unicode text; another encoding would
				// reject some of it.
				refused = fmt.Errorf("database encoding is %s, want UTF8", encoding)
				return refused
			}
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
				version    integer     PRIMARY KEY,
				applied_at timestamptz NOT NULL DEFAULT now()
			)`); err != nil {
				return fmt.Errorf("create schema_migrations: %w", err)
			}
			var current int
			if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
				return fmt.Errorf("read schema version: %w", err)
			}
			if current > len(migrations) {
				// A newer binary has run here; its schema may mean things
				// this one does not know about, so refuse rather than
				// corrupt it.
				refused = fmt.Errorf("database schema version %d is newer than this build supports (%d)", current, len(migrations))
				return refused
			}
			for i := current; i < len(migrations); i++ {
				if _, err := tx.Exec(ctx, migrations[i]); err != nil {
					return fmt.Errorf("migration %d: %w", i+1, err)
				}
				if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, i+1); err != nil {
					return fmt.Errorf("migration %d: %w", i+1, err)
				}
			}
			return nil
		})
	})
	if refused != nil {
		return refused
	}
	return err
}
