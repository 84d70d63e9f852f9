// Package config is gatehouse's configuration as code: the declarative
// document (YAML or JSON, one file or a directory of files), how it is
// read with the place of every value, checked, compared with a store's
// draft and applied to it in one transaction. The admin API, the CLI and
// file-only mode share it, so that a file and the server agree on what is
// valid by running the same code.
package config

import (
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// FormatVersion is the version of the document format this package reads
// and writes, the value of a document's format_version.
const FormatVersion = "1"

// Document is a whole declarative configuration. Every entry has the
// fields of the admin API's resource, without those the server sets
// (version, created_at, updated_at, which are accepted and ignored, so
// that what GET returns pastes into a file), and with an id, which every
// entry needs: entries are matched to the store's records by id, and
// references name ids.
type Document struct {
	FormatVersion string               `json:"format_version"`
	Services      []*gatehouse.Service `json:"services,omitempty"`
	Routes        []*gatehouse.Route   `json:"routes,omitempty"`
	Consumers     []*Consumer          `json:"consumers,omitempty"`
	Policies      []*gatehouse.Policy  `json:"policies,omitempty"`
	Specs         []*Spec              `json:"specs,omitempty"`
}

// Consumer is a consumer with its credentials, which a file nests under
// it (their consumer_id is implied, and must match if given).
type Consumer struct {
	gatehouse.Consumer
	Credentials []*Credential `json:"credentials,omitempty"`
}

// Credential is a credential whose secret a file may give in the clear
// (key, password: best through ${{ env "GATEHOUSE_VAR_..." }}) or as the
// hash the store keeps (key_hash: the key's SHA-256 in hex, as
// gatehouse.HashToken; password_hash: gatehouse.HashPassword's form), so
// that the secret itself never needs to sit in the file. A dump gives
// neither: applying a credential without a secret keeps the stored one,
// and a new credential without one is refused (a generated secret would
// be shown to no one).
type Credential struct {
	gatehouse.Credential
	KeyHash      string `json:"key_hash,omitempty"`
	PasswordHash string `json:"password_hash,omitempty"`
}

// Spec is an OpenAPI document as a file holds it: inline, as a YAML or
// JSON value or as a string holding the document's text, or in a file
// named relative to the configuration file (document_file), which
// loading reads into Document. The server takes Document only.
type Spec struct {
	gatehouse.Meta
	gatehouse.Tagged
	Name string `json:"name,omitempty"`
	// MediaType is the document's type, as the spec API takes it; by
	// default application/json for a document that is JSON text or an
	// inline value, application/yaml for other text.
	MediaType    string `json:"media_type,omitempty"`
	Document     any    `json:"document,omitempty"`
	DocumentFile string `json:"document_file,omitempty"`
}

// Problem is one thing wrong with a document: where (a JSON pointer into
// the submitted document, and for a file read from disk its file, line
// and column), what, and the error code it earns (EINVALID for what a
// schema could see, EUNPROCESSABLE for what needs meaning, ECONFLICT for
// a clash with the store).
type Problem struct {
	Pointer string `json:"pointer"`
	Message string `json:"message"`
	// Other, if set, points at a second place the problem involves (the
	// first entry with an id that Pointer's repeats).
	Other string         `json:"other,omitempty"`
	Code  gatehouse.Code `json:"-"`
	Pos   *Pos           `json:"-"`
}

// Pos is a place in a file: 1-based line and column.
type Pos struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
}

// ChangeSet is what applying a document changes, or would change (a dry
// run): one entry per resource created, updated or deleted, an update
// field by field.
type ChangeSet struct {
	// Draft is the ETag of the draft the change set was computed against;
	// after a real apply, NewDraft is the ETag of the draft it left.
	Draft    string   `json:"draft"`
	NewDraft string   `json:"new_draft,omitempty"`
	DryRun   bool     `json:"dry_run"`
	Changes  []Change `json:"changes"`
	Summary  Summary  `json:"summary"`
}

// Summary counts a change set's entries by action.
type Summary struct {
	Create int `json:"create"`
	Update int `json:"update"`
	Delete int `json:"delete"`
}

// Change is one resource's change.
type Change struct {
	Action gatehouse.Op   `json:"action"`
	Kind   gatehouse.Kind `json:"kind"`
	ID     string         `json:"id"`
	Name   string         `json:"name,omitempty"`
	// Pointer is the entry's place in the submitted document (none for a
	// delete).
	Pointer string `json:"pointer,omitempty"`
	// Fields are an update's changed members, by JSON pointer within the
	// resource; a secret's values are never shown.
	Fields []FieldChange `json:"fields,omitempty"`
	// Warnings are the risks the resource's settings take, as the admin
	// API shows them on the resource (a service's tls.verify false).
	Warnings []string `json:"warnings,omitempty"`
}

// FieldChange is one member of an update: its value before and after
// (absent where the member was or becomes absent).
type FieldChange struct {
	Field string `json:"field"`
	From  any    `json:"from,omitempty"`
	To    any    `json:"to,omitempty"`
}

// Singular names one resource of kind, for a message: "policy" for
// policies.
func Singular(kind gatehouse.Kind) string {
	s := string(kind)
	if r, ok := strings.CutSuffix(s, "ies"); ok {
		return r + "y"
	}
	return strings.TrimSuffix(s, "s")
}

// String is "file:line:column", as much of it as is known.
func (p *Pos) String() string {
	switch {
	case p == nil || p.File == "":
		return ""
	case p.Line <= 0:
		return p.File
	case p.Column <= 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// String is "file:line:column: pointer: message", as compilers place
// their errors, with what is known of the place. The pointer leads the
// message because messages are said of the value it names ("is not a
// known field").
func (p Problem) String() string {
	var parts []string
	if at := p.Pos.String(); at != "" {
		parts = append(parts, at)
	}
	if p.Pointer != "" {
		parts = append(parts, p.Pointer)
	}
	return strings.Join(append(parts, p.Message), ": ")
}

// Risks returns the warnings res's settings earn (Service.Risks), none
// for a resource without any.
func Risks(res gatehouse.Resource) []string {
	if r, ok := res.(interface{ Risks() []string }); ok {
		return r.Risks()
	}
	return nil
}
