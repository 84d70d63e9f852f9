// Package gatehouse is the domain of the gatehouse API gateway: the resources
// an operator manages (services, routes, consumers, credentials, policies,
// admin tokens), the rules that make one valid, the one error type, and the
// Store interface every backend implements.
//
// Validation is split as the status-code contract splits it: what a schema
// can see (syntax, types, required and unknown fields, ranges, enums) is
// EINVALID (400); what needs deeper meaning (an upstream URL that cannot be
// used, a path pattern that does not compile, a reference to a resource that
// does not exist) is EUNPROCESSABLE (422).
package gatehouse

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"time"
)

// Meta is what every resource carries. The store assigns Version and the
// times; clients may choose ID on creation.
type Meta struct {
	ID        string    `json:"id"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Tagged is embedded by the resources an operator manages (not those the
// server writes: revisions, deployments, nodes). Tags label a resource for
// its owners: a declarative sync with selected tags manages exactly the
// resources that carry them all.
type Tagged struct {
	Tags []string `json:"tags,omitempty"`
}

// MaxTags bounds a resource's tags.
const MaxTags = 16

// TagList returns the tags.
func (t *Tagged) TagList() []string { return t.Tags }

// Labelled is a resource that has tags (embeds Tagged).
type Labelled interface {
	Resource
	TagList() []string
}

// HasTags reports whether res carries every tag of selected. A resource
// without tags carries none, and no selection matches a kind without them.
func HasTags(res Resource, selected []string) bool {
	l, ok := res.(Labelled)
	if !ok {
		return len(selected) == 0
	}
	for _, want := range selected {
		if !slices.Contains(l.TagList(), want) {
			return false
		}
	}
	return true
}

// checkTags checks a list of tags: names, at most MaxTags, none repeated.
func checkTags(field string, tags []string, f *fields) {
	checkList(field, tags, MaxTags, func(s string) string { return s }, f)
	for i, t := range tags {
		if t != "" && !namePattern.MatchString(t) {
			f.add(fmt.Sprintf("%s[%d]", field, i), nameRule)
		}
	}
}

// CheckTags returns what is wrong with a list of tags, as resources carry
// them and commands and the admin API select them.
func CheckTags(field string, tags []string) []FieldError {
	var f fields
	checkTags(field, tags, &f)
	return f
}

// Index is what a resource asks the store to enforce for it.
type Index struct {
	Name   string
	Parent *Ref
	Refs   []Ref
	Unique []string
}

// Resource is implemented by every managed resource type.
type Resource interface {
	Kind() Kind
	Base() *Meta
	// Check validates the resource on its own: it returns the fields a
	// schema can reject (400) and the fields that are well-formed but
	// cannot be applied (422).
	Check() (invalid, unprocessable []FieldError)
	Index() Index
}

// Sealer is a resource with a secret that is shown only once, in the
// response to its creation, and stored only as a hash.
type Sealer interface {
	// Seal generates the secret if the client gave none and returns the
	// hash to store.
	Seal() []byte
	// Redact clears the plaintext and returns a function restoring it.
	Redact() (restore func())
}

// WriteOnly is a resource with members that are written but never shown
// (a policy's HS256 secrets, which the data plane needs in the clear and
// so cannot be hashed as a Sealer's are): reads omit them, and an update
// that omits them keeps the stored ones.
//
// WriteOnlyMember names the members that hold such values, wherever they
// sit: what reports a resource's values without hiding it first (a
// configuration's change set) shows them only as changed.
type WriteOnly interface {
	// Hide clears the write-only members, for showing the resource, and
	// keeps them aside (unexported) for KeepHidden.
	Hide()
	// KeepHidden gives the resource, an update built from what a client
	// sent, the write-only members it omits, from current: the resource
	// as loaded (hidden) before the update.
	KeepHidden(current Resource)
}

// ServerSet is a resource with members that only the server writes (a
// route's import marker): what a client sends for them is ignored.
type ServerSet interface {
	// KeepServerSet sets the members from current, the resource as
	// stored before a change, or clears them when current is nil (a
	// creation).
	KeepServerSet(current Resource)
}

// KeepServerSet is ServerSet.KeepServerSet for any resource.
func KeepServerSet(next, current Resource) {
	if s, ok := next.(ServerSet); ok {
		s.KeepServerSet(current)
	}
}

// writeOnlyMembers are the members WriteOnly resources hide: an HS256
// key's secret, a service's TLS client key.
var writeOnlyMembers = map[string]bool{"secret": true, "client_key": true}

// WriteOnlyMember reports whether a member of this name is write-only.
func WriteOnlyMember(name string) bool { return writeOnlyMembers[name] }

// KeepHidden is WriteOnly.KeepHidden for any resource.
func KeepHidden(next, current Resource) {
	if w, ok := next.(WriteOnly); ok {
		w.KeepHidden(current)
	}
}

// idPattern is the id syntax: safe in a URL path segment without escaping,
// in a log line and in a file name. No dots, so "." and ".." cannot be ids.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// ValidID reports whether id is a syntactically valid resource id.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// IDRule describes valid ids for error messages and documentation.
const IDRule = "must be 1 to 64 letters, digits, '-' or '_', starting with a letter or digit"

// NewID returns a random id: 26 characters of lowercase base32, 130 bits.
func NewID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	var b [26]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[b[i]&31]
	}
	return string(b[:])
}

// namePattern keeps names printable and unambiguous in URLs and logs.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$`)

const nameRule = "must be 1 to 128 letters, digits, '.', '_', '~' or '-', starting with a letter or digit"

// ValidName reports whether s is a valid resource name.
func ValidName(s string) bool { return namePattern.MatchString(s) }

// NameRule describes valid names for error messages and documentation.
const NameRule = nameRule

// fields collects field errors in the order they are found.
type fields []FieldError

func (f *fields) add(field, format string, args ...any) {
	*f = append(*f, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func checkMeta(m *Meta, f *fields) {
	if m.ID != "" && !ValidID(m.ID) {
		f.add("id", IDRule)
	}
}

func checkName(name string, required bool, f *fields) {
	switch {
	case name == "" && required:
		f.add("name", "is required")
	case name != "" && !namePattern.MatchString(name):
		f.add("name", nameRule)
	}
}

func checkRange(field string, v, lo, hi int, f *fields) {
	if v < lo || v > hi {
		f.add(field, "must be between %d and %d", lo, hi)
	}
}

// Encode turns a resource into the Record the store keeps.
func Encode(res Resource, secret []byte) (*Record, error) {
	m := *res.Base()
	meta := res.Base()
	saved := *meta
	// Version and times live in the record's own columns; keeping them out
	// of Body means there is one truth for each.
	*meta = Meta{ID: saved.ID}
	body, err := json.Marshal(res)
	*meta = saved
	if err != nil {
		return nil, err
	}
	ix := res.Index()
	return &Record{
		Kind:      res.Kind(),
		ID:        m.ID,
		Version:   m.Version,
		CreatedAt: m.CreatedAt,
		UpdatedAt: m.UpdatedAt,
		Name:      ix.Name,
		Parent:    ix.Parent,
		Refs:      ix.Refs,
		Unique:    ix.Unique,
		Secret:    secret,
		Body:      body,
	}, nil
}

// NormalizeAndCheck puts res in its normal form, the form the data plane
// reads back (a route's methods in upper case, a policy's config with
// every default: see their Normalize), and checks it, as a write must. A
// policy's config is decoded once for both.
func NormalizeAndCheck(res Resource) (invalid, unprocessable []FieldError) {
	switch r := res.(type) {
	case interface {
		normalizeAndCheck() (invalid, unprocessable []FieldError)
	}:
		return r.normalizeAndCheck()
	case interface{ Normalize() }:
		r.Normalize()
	}
	return res.Check()
}

// Decode fills res from a stored record.
func Decode(rec *Record, res Resource) error {
	if err := json.Unmarshal(rec.Body, res); err != nil {
		return Internal(fmt.Errorf("decode %s/%s: %w", rec.Kind, rec.ID, err))
	}
	*res.Base() = Meta{ID: rec.ID, Version: rec.Version, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt}
	return nil
}

// Sync copies what the store assigned on a write back into res.
func Sync(res Resource, rec *Record) {
	*res.Base() = Meta{ID: rec.ID, Version: rec.Version, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt}
}
