package gatehouse

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/gatehouse/gatehouse/internal/strictjson"
)

// Code is the closed set of error kinds gatehouse produces. Each maps to
// exactly one HTTP status in package problem; a code without a mapping fails
// problem's tests.
type Code string

const (
	EINVALID         Code = "invalid"                       // syntax, types, unknown or missing fields (400)
	EUNAUTHORIZED    Code = "unauthorized"                  // no or bad credentials (401)
	EFORBIDDEN       Code = "forbidden"                     // valid credentials that do not allow this (403)
	ENOTFOUND        Code = "not-found"                     // never existed (404)
	EMETHOD          Code = "method-not-allowed"            // known method, not supported here (405)
	ENOTACCEPTABLE   Code = "not-acceptable"                // Accept excludes what we produce (406)
	EPROXYAUTH       Code = "proxy-authentication-required" // egress proxy credentials missing or wrong (407)
	ETIMEOUT         Code = "request-timeout"               // client too slow sending the request (408)
	ECONFLICT        Code = "conflict"                      // id or unique key taken, or still referenced (409)
	EGONE            Code = "gone"                          // existed, deleted within the tombstone retention (410)
	EPRECONDITION    Code = "precondition-failed"           // If-Match / If-Unmodified-Since not met (412)
	ETOOLARGE        Code = "content-too-large"             // body over the limit (413)
	EMEDIATYPE       Code = "unsupported-media-type"        // body of a type we do not take (415)
	EEXPECTATION     Code = "expectation-failed"            // an Expect other than 100-continue (417)
	EUNPROCESSABLE   Code = "unprocessable"                 // well-formed but semantically wrong (422)
	ETOOMANY         Code = "too-many-requests"             // a rate limit is spent (429)
	EHEADERSTOOLARGE Code = "header-fields-too-large"       // headers over the limit (431)
	EINTERNAL        Code = "internal"                      // our own failure; details only in the log (500)
	ENOTIMPLEMENTED  Code = "not-implemented"               // request method not recognised at all (501)
	EBADGATEWAY      Code = "bad-gateway"                   // the upstream refused, reset, or did not speak HTTP (502)
	EGATEWAYTIMEOUT  Code = "gateway-timeout"               // the upstream did not answer in time (504)
	EVERSION         Code = "http-version-not-supported"    // a protocol version the listener does not speak (505)
	EUNAVAILABLE     Code = "unavailable"                   // store unreachable or draining (503)
)

// Codes lists every Code, so that tests can prove each has a status.
var Codes = []Code{
	EINVALID, EUNAUTHORIZED, EFORBIDDEN, ENOTFOUND, EMETHOD, ENOTACCEPTABLE, EPROXYAUTH,
	ETIMEOUT, ECONFLICT, EGONE, EEXPECTATION, EPRECONDITION, ETOOLARGE, EMEDIATYPE,
	EUNPROCESSABLE, ETOOMANY, EHEADERSTOOLARGE, EINTERNAL, ENOTIMPLEMENTED, EBADGATEWAY, EGATEWAYTIMEOUT, EVERSION, EUNAVAILABLE,
}

// FieldError names one offending field of a request, by JSON path
// ("targets[1].weight"), and what is wrong with it.
type FieldError struct {
	Field   string `json:"field" xml:"field"`
	Message string `json:"message" xml:"message"`
	// Unlisted is set only on the entry that ends a list cut at
	// MaxFieldErrors: how many errors it stands for (clients read the
	// number in Message).
	Unlisted int `json:"-" xml:"-"`
}

// MaxFieldErrors is how many field errors a problem lists; one more entry,
// on "body", counts the rest. It is the rule of request body decoding
// (strictjson), applied to every problem whatever found its errors: a
// resource's checks or a query string can find as many as a body's types.
const MaxFieldErrors = strictjson.MaxErrors

// capFields lists the first MaxFieldErrors of f and ends the list with one
// entry counting the rest, those an entry of f already counted included,
// so that lists cut by the decoder can be merged and cut again.
func capFields(f []FieldError) []FieldError {
	unlisted, n := 0, 0
	for _, e := range f {
		if e.Unlisted > 0 {
			unlisted += e.Unlisted
		} else {
			n++
		}
	}
	if unlisted == 0 && n <= MaxFieldErrors {
		return f
	}
	out := make([]FieldError, 0, min(n, MaxFieldErrors)+1)
	for _, e := range f {
		switch {
		case e.Unlisted > 0:
		case len(out) < MaxFieldErrors:
			out = append(out, e)
		default:
			unlisted++
		}
	}
	return append(out, FieldError(strictjson.Unlisted(unlisted)))
}

// Error is gatehouse's one application error. Message is safe to show to
// clients; Err, if set, is the underlying cause and is only ever logged.
type Error struct {
	Code    Code
	Message string
	Fields  []FieldError
	Err     error
	// Successor is where a retired resource went (410): a URL.
	Successor string
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a client-safe formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Internal wraps an unexpected failure. Its text stays in the server log.
func Internal(err error) *Error {
	return &Error{Code: EINTERNAL, Message: "An internal error occurred.", Err: err}
}

// Unavailable wraps a failure to reach the store.
func Unavailable(err error) *Error {
	return &Error{Code: EUNAVAILABLE, Message: "The configuration store is unavailable.", Err: err}
}

// Invalid returns an EINVALID error listing every offending field.
func Invalid(fields []FieldError) *Error {
	sortFields(fields)
	return &Error{Code: EINVALID, Message: "The request body is invalid.", Fields: fields}
}

// Unprocessable returns an EUNPROCESSABLE error listing every offending field.
func Unprocessable(fields []FieldError) *Error {
	sortFields(fields)
	return &Error{Code: EUNPROCESSABLE, Message: "The request is well-formed but cannot be applied.", Fields: fields}
}

// sortFields orders field errors by field, so that responses are stable.
func sortFields(f []FieldError) {
	sort.SliceStable(f, func(i, j int) bool { return f[i].Field < f[j].Field })
}

// ErrorCode returns the Code of err, or EINTERNAL for any error that is not
// an *Error: an unclassified failure is ours, never the client's.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// Absent reports whether err says a resource is not there: it never
// existed (ENOTFOUND) or was deleted (EGONE).
func Absent(err error) bool {
	code := ErrorCode(err)
	return code == ENOTFOUND || code == EGONE
}

// ErrorMessage returns the client-safe message of err.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != EINTERNAL {
		return e.Message
	}
	return "An internal error occurred."
}

// ErrorSuccessor returns the successor err names, if any.
func ErrorSuccessor(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Successor
	}
	return ""
}

// ErrorFields returns the field errors of err, if any, at most
// MaxFieldErrors and an entry counting the rest: the one place every
// problem's errors pass.
func ErrorFields(err error) []FieldError {
	var e *Error
	if errors.As(err, &e) {
		return capFields(e.Fields)
	}
	return nil
}

// The errors below are those every Store reports, given here so that each
// engine says the same thing in the same words.

// Missing is a record that is not there: deleted within the tombstone
// retention (EGONE), or never existed or deleted longer ago (ENOTFOUND).
func Missing(kind Kind, id string, deleted bool) *Error {
	if deleted {
		return Errorf(EGONE, "%s %q has been deleted", kind, id)
	}
	return Errorf(ENOTFOUND, "%s %q does not exist", kind, id)
}

// NoHolder is a Lookup of a unique key no record holds (ENOTFOUND).
func NoHolder(kind Kind, key string) *Error {
	return Errorf(ENOTFOUND, "no %s holds %q", kind, key)
}

// AlreadyExists is a Create of an id in use (ECONFLICT).
func AlreadyExists(kind Kind, id string) *Error {
	return Errorf(ECONFLICT, "%s %q already exists", kind, id)
}

// Stale is a write conditional on a version the record is no longer at
// (EPRECONDITION); current is zero when the write itself found the change.
func Stale(kind Kind, id string, current, want int64) *Error {
	if current == 0 {
		return Errorf(EPRECONDITION, "%s %q has changed since version %d", kind, id, want)
	}
	return Errorf(EPRECONDITION, "%s %q is at version %d, not %d", kind, id, current, want)
}

// DraftChanged is an Apply conditional on a DraftTag the draft is no
// longer at (EPRECONDITION).
func DraftChanged(current, want string) *Error {
	return Errorf(EPRECONDITION, "the draft configuration has changed since it was read: its ETag is %q, not %q", current, want)
}

// MissingRef is a write naming a parent or reference that does not exist
// (EUNPROCESSABLE).
func MissingRef(ref Ref) *Error {
	return Errorf(EUNPROCESSABLE, "%s %q does not exist", ref.Kind, ref.ID)
}

// InUse is a Delete of a record another still references (ECONFLICT).
func InUse(doomed, user Ref) *Error {
	return Errorf(ECONFLICT, "%s %q is still used by %s %q", doomed.Kind, doomed.ID, user.Kind, user.ID)
}

// Clash is a uniqueness violation the database caught after the store's
// own checks passed (ECONFLICT); err, the database's word, is logged only.
func Clash(err error) *Error {
	return &Error{Code: ECONFLICT, Message: "The resource conflicts with an existing one.", Err: err}
}

// KeyTaken is the conflict a store reports when a record's unique key is
// held by another. The message says what clashed in the client's terms and
// never repeats a secret's hash; only a route clash names the other route,
// which the caller needs to resolve it.
func KeyTaken(kind Kind, key, owner string) *Error {
	prefix, value, _ := strings.Cut(key, ":")
	field, msg := "", "a value that must be unique is already in use"
	switch prefix {
	case "name":
		field, msg = "name", fmt.Sprintf("the name %q is already in use", value)
	case "match":
		field, msg = "paths", fmt.Sprintf("route %q already matches the same requests at the same priority", owner)
	case "key":
		field, msg = "key", "this API key is already in use"
	case "basic":
		field, msg = "username", fmt.Sprintf("the username %q is already in use", value)
	case "hash":
		field, msg = "token", "this token is already in use"
	}
	e := &Error{Code: ECONFLICT, Message: strings.ToUpper(msg[:1]) + msg[1:] + "."}
	if field != "" {
		e.Fields = []FieldError{{Field: field, Message: msg}}
	}
	return e
}
