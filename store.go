package gatehouse

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Kind names a resource collection; it is also the collection's path
// segment under /admin/v1.
type Kind string

const (
	KindService    Kind = "services"
	KindRoute      Kind = "routes"
	KindConsumer   Kind = "consumers"
	KindCredential Kind = "credentials"
	KindPolicy     Kind = "policies"
	KindToken      Kind = "tokens"
)

// Kinds lists every resource kind.
var Kinds = []Kind{KindService, KindRoute, KindConsumer, KindCredential, KindPolicy, KindToken, KindSpec}

// Ref points at another resource.
type Ref struct {
	Kind Kind
	ID   string
}

// Record is a resource as the store keeps it: the typed resource encoded as
// JSON in Body, plus what the store must index and enforce. The store treats
// Body as opaque; everything it checks is spelled out in the other fields, so
// that every backend enforces the same rules in its own transaction.
type Record struct {
	Kind Kind
	ID   string

	// Version is assigned by the store on every write from one store-wide
	// sequence, so a version is never reused, even for a re-created id. It
	// is the resource's strong ETag.
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time

	// Name is filterable (?name=); empty means unnamed.
	Name string
	// Parent is the owning resource, if any (a consumer for credentials). It
	// must exist on write, and deleting it deletes this record too.
	Parent *Ref
	// Refs are resources this one uses (a route's service). Each must exist
	// on write (else EUNPROCESSABLE), and none can be deleted while this
	// record uses it (ECONFLICT).
	Refs []Ref
	// Unique holds keys no other record may hold at the same time (a name,
	// a route's match keys, a credential's key hash). A clash is ECONFLICT.
	Unique []string
	// Secret is a hash of the secret (token, API key, password) that only
	// creation revealed; it never leaves the store through the admin API.
	Secret []byte
	// Body is the resource's JSON, without the fields above that the store
	// assigns (version and times are merged back in by the domain).
	Body []byte
}

// The forms in which every store writes a record's keys, references and
// secret, whatever the engine.

// DistinctKeys returns Unique without repeats, keeping the first of each:
// a record naming a key twice holds it once.
func (r *Record) DistinctKeys() []string { return distinct(r.Unique) }

// DistinctRefs returns Refs without repeats, keeping the first of each: a
// record naming a reference twice holds it once.
func (r *Record) DistinctRefs() []Ref { return distinct(r.Refs) }

// StoredSecret returns Secret, or nil if it is empty: "no secret" is
// stored as NULL and reads back as nil however the caller spelled it.
func (r *Record) StoredSecret() []byte {
	if len(r.Secret) == 0 {
		return nil
	}
	return r.Secret
}

func distinct[T comparable](xs []T) []T {
	seen := make(map[T]bool, len(xs))
	out := make([]T, 0, len(xs))
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// Filter narrows a List. Empty fields do not filter.
type Filter struct {
	Name     string
	ParentID string // owning resource's id (consumer of a credential)
	RefID    string // a referenced resource's id (service of a route)
	RefKind  Kind   // with RefID: the referenced resource's kind; "" for any
}

// ListOptions pages through a collection in creation order.
type ListOptions struct {
	Filter Filter
	// After is the position (Page.Next) to continue after; zero starts at
	// the beginning.
	After int64
	// Limit is the page size; zero means DefaultPageSize, and the store
	// caps it at MaxPageSize.
	Limit int
}

// Page sizes of List.
const (
	DefaultPageSize = 100
	MaxPageSize     = 500
)

// PageLimit is the page size a store uses for opts.Limit.
func PageLimit(limit int) int {
	if limit <= 0 {
		return DefaultPageSize
	}
	return min(limit, MaxPageSize)
}

// Page is one page of a List. Next is zero on the last page.
type Page struct {
	Records []*Record
	Next    int64
}

// Store persists resources. Every method is one transaction: it succeeds
// whole or changes nothing. Errors are *Error values: ENOTFOUND, EGONE,
// ECONFLICT, EPRECONDITION, EUNPROCESSABLE as documented per method, and
// EUNAVAILABLE when the store cannot be reached.
type Store interface {
	// Create inserts rec, assigning Version, CreatedAt and UpdatedAt. An
	// existing id or a taken unique key is ECONFLICT; a missing parent or
	// reference is EUNPROCESSABLE. Creating an id that has a tombstone is
	// allowed and removes the tombstone.
	Create(ctx context.Context, rec *Record) error

	// Get returns the record. An id that never existed is ENOTFOUND; one
	// deleted within the tombstone retention is EGONE.
	Get(ctx context.Context, kind Kind, id string) (*Record, error)

	// Lookup returns the record holding a unique key, or ENOTFOUND.
	Lookup(ctx context.Context, kind Kind, key string) (*Record, error)

	// Update replaces the record with rec.ID, which must be at version
	// ifVersion (else EPRECONDITION), keeping CreatedAt and assigning a new
	// Version and UpdatedAt. Missing ids are ENOTFOUND or EGONE as for Get.
	Update(ctx context.Context, rec *Record, ifVersion int64) error

	// Delete removes the record, and its children, leaving a tombstone. A
	// non-zero ifVersion must match (else EPRECONDITION). A record still
	// referenced by another is ECONFLICT.
	Delete(ctx context.Context, kind Kind, id string, ifVersion int64) error

	// List returns records of kind in creation order.
	List(ctx context.Context, kind Kind, opts ListOptions) (*Page, error)

	// Snapshot returns every record of the given kinds, each kind in
	// creation order, as of one moment: no write is half-seen. Deployments
	// snapshot the draft configuration with it.
	Snapshot(ctx context.Context, kinds ...Kind) (map[Kind][]*Record, error)

	// Apply makes every change of a batch in order, in one transaction: all
	// of them or none. Each change is judged as Create, Update or Delete
	// would judge it alone, against the state the earlier changes of the
	// batch left; the first that fails fails the batch, with a
	// *ChangeError naming it. A failure of the store itself (EUNAVAILABLE,
	// the context's error) is no change's fault and names none. A
	// non-empty ifDraft must equal the DraftTag of the draft kinds as the
	// transaction begins, else EPRECONDITION (and no ChangeError). On
	// success every record of a create or update carries what the store
	// assigned, as after Create and Update; on failure the records are
	// left as they were.
	Apply(ctx context.Context, changes []Change, ifDraft string) error

	// Try judges a batch as Apply would, in one transaction that it then
	// rolls back: it fails exactly as Apply would have failed at that
	// moment, and writes nothing either way (the records of the changes
	// are left as they were, versions unassigned). A dry run answers
	// with it what the real write would.
	Try(ctx context.Context, changes []Change, ifDraft string) error

	// DraftTag returns the DraftTag of the draft kinds as of one moment.
	DraftTag(ctx context.Context) (string, error)

	// Count returns how many records of kind exist.
	Count(ctx context.Context, kind Kind) (int, error)

	// Ping reports whether the store is reachable (EUNAVAILABLE if not).
	Ping(ctx context.Context) error

	Close() error
}

// DamageReporter is implemented by stores that can find their own data
// damaged (a SQLite file with a corrupt page). Damage is not an outage that
// passes: the node is not ready until an operator repairs the store.
type DamageReporter interface {
	// Damaged returns the damage found so far (EUNAVAILABLE), or nil.
	Damaged() error
}

// Notifier is implemented by stores that can say promptly that records of a
// kind were written (PostgreSQL's LISTEN/NOTIFY). Subscribe sends the kind
// of each committed change it hears of, or "" when it may have missed
// some; the channel closes when ctx is done. It is a hint that wakes a
// poller early, never a replacement for polling.
type Notifier interface {
	Subscribe(ctx context.Context) <-chan Kind
}

// Op is what a Change does.
type Op string

const (
	OpCreate Op = "create"
	OpUpdate Op = "update"
	OpDelete Op = "delete"
)

// Change is one write of a Store.Apply batch. A delete needs only the
// record's Kind and ID; IfVersion, for an update or a delete, is the
// version the record must be at (an update's is required, a delete's zero
// means any), exactly as for Update and Delete.
type Change struct {
	Op        Op
	Record    *Record
	IfVersion int64
}

// ChangeError is the failure of one change of an Apply batch: Index is its
// position in the batch, Err what Create, Update or Delete would have
// returned.
type ChangeError struct {
	Index int
	Err   error
}

// ChangeFailed names change i of a batch as the cause of err if err is
// the change's own fault (an *Error a single write would return). A
// failure of the store itself (a lost connection, a full disk, a canceled
// context) is no change's fault and comes back as it is, to be retried or
// classified.
func ChangeFailed(i int, err error) error {
	var ge *Error
	if errors.As(err, &ge) {
		return &ChangeError{Index: i, Err: err}
	}
	return err
}

func (e *ChangeError) Error() string { return fmt.Sprintf("change %d: %v", e.Index, e.Err) }
func (e *ChangeError) Unwrap() error { return e.Err }

// Stamp is what DraftTag reads of a record: which it is and its version.
type Stamp struct {
	Kind    Kind
	ID      string
	Version int64
}

// DraftTag is the ETag of the draft configuration: a digest of the kind,
// id and version of every record of the DraftKinds, in any order. Every
// write of a draft record gives a new version, never reused, and a delete
// removes its stamp, so the tag changes with every change of the draft
// and with nothing else (heartbeats, deployments). Stores compute it from
// the rows they read in their transaction.
func DraftTag(stamps []Stamp) string {
	sorted := slices.Clone(stamps)
	slices.SortFunc(sorted, func(a, b Stamp) int {
		if c := strings.Compare(string(a.Kind), string(b.Kind)); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	h := sha256.New()
	for _, s := range sorted {
		fmt.Fprintf(h, "%s/%s@%d\n", s.Kind, s.ID, s.Version)
	}
	return "d-" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:18])
}
