package gatehouse

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/openapi"
	"go.yaml.in/yaml/v4"
)

// KindSpec is the collection of OpenAPI documents.
const KindSpec Kind = "specs"

// The media types a spec's document is kept in.
const (
	SpecJSON = "application/json"
	SpecYAML = "application/yaml"
)

// SpecMediaTypes maps each media type a document may be sent as to the one
// it is kept as: JSON, or YAML (application/vnd.oai.openapi is YAML, as
// its IANA registration says; x-yaml and text/yaml are what tools send).
var SpecMediaTypes = map[string]string{
	SpecJSON:                           SpecJSON,
	"application/vnd.oai.openapi+json": SpecJSON,
	SpecYAML:                           SpecYAML,
	"application/x-yaml":               SpecYAML,
	"text/yaml":                        SpecYAML,
	"text/x-yaml":                      SpecYAML,
	"application/vnd.oai.openapi":      SpecYAML,
}

// SpecMediaType returns the media type a document sent with Content-Type
// ct is kept as, or "" if ct is none of SpecMediaTypes or names a charset
// other than UTF-8.
func SpecMediaType(ct string) string {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || (params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8")) {
		return ""
	}
	return SpecMediaTypes[mt]
}

// Spec is an OpenAPI description (3.0 or 3.1) of an API behind the
// gateway, kept as the client wrote it: Document is its text, JSON or
// YAML as MediaType says. Routes are imported from it, and openapi
// policies validate requests and judge responses against it.
type Spec struct {
	Meta
	Tagged
	Name      string `json:"name"`
	MediaType string `json:"media_type"`
	// OpenAPI, Title and Operations are read from Document when it is
	// written (NormalizeAndCheck), so that reading a spec does not parse it.
	OpenAPI    string `json:"openapi"`
	Title      string `json:"title"`
	Operations int    `json:"operations"`
	// Document is omitted only where a listing leaves it out (a list of
	// specs, a list of revisions): documents can be megabytes each.
	Document string `json:"document,omitempty"`
}

func NewSpec() *Spec { return &Spec{} }

func (s *Spec) Kind() Kind  { return KindSpec }
func (s *Spec) Base() *Meta { return &s.Meta }

func (s *Spec) Index() Index {
	return Index{Name: s.Name, Unique: []string{"name:" + s.Name}}
}

// Check checks the spec as NormalizeAndCheck does, without changing it. A
// spec without a name takes one from its document's title (NameFrom).
func (s *Spec) Check() (invalid, unprocessable []FieldError) {
	_, invalid, unprocessable = s.check()
	return invalid, unprocessable
}

// normalizeAndCheck checks the spec and sets what it reads from the
// document: the one parse of a written document.
func (s *Spec) normalizeAndCheck() (invalid, unprocessable []FieldError) {
	doc, invalid, unprocessable := s.check()
	if doc != nil {
		s.OpenAPI, s.Title, s.Operations = doc.Version, doc.Title, len(doc.Operations)
		if s.Name == "" {
			s.Name = NameFrom(doc.Title)
		}
	}
	return invalid, unprocessable
}

// check is the one validation of a spec, whoever writes it (the admin API,
// later the CLI and configuration files). A document that is not JSON or
// YAML as its media type says is malformed, as a malformed body is (400,
// field "document"); one that is, but is not an OpenAPI document gatehouse
// can use, is 422 with each problem at its JSON pointer into the document
// ("/paths/~1pets/get"), "document" for the document as a whole.
func (s *Spec) check() (doc *openapi.Document, bad, semantic fields) {
	checkMeta(&s.Meta, &bad)
	checkTags("tags", s.Tags, &bad)
	checkName(s.Name, false, &bad)
	switch s.MediaType {
	case SpecJSON, SpecYAML:
	default:
		bad.add("media_type", "must be %s or %s", SpecJSON, SpecYAML)
	}
	if msg := documentSyntax(s.MediaType, []byte(s.Document)); msg != "" {
		bad.add("document", "%s", msg)
	}
	if len(bad) > 0 {
		return nil, bad, nil
	}
	doc, problems := openapi.Parse([]byte(s.Document))
	for _, p := range problems {
		semantic.add(DocumentField(p.Pointer), "%s", p.Message)
	}
	if doc != nil && s.Name == "" && NameFrom(doc.Title) == "" {
		semantic.add("name", "is required: the document's info.title (%q) gives no name by the name rule", doc.Title)
	}
	return doc, nil, semantic
}

// documentSyntax says why data is not well-formed in mediaType, or "".
func documentSyntax(mediaType string, data []byte) string {
	switch {
	case len(bytes.TrimSpace(data)) == 0:
		return "is empty; an OpenAPI document is required"
	case !utf8.Valid(data):
		return "is not valid UTF-8"
	}
	// A document that opens as JSON is read as JSON whatever its label
	// (JSON is YAML), as openapi.Parse reads it: the YAML parser is
	// superlinear on one long line, and a large JSON document labelled
	// YAML must not reach it.
	if t := bytes.TrimLeft(data, " \t\r\n"); t[0] == '{' || t[0] == '[' {
		mediaType = SpecJSON
	}
	switch mediaType {
	case SpecJSON:
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			return "is not well-formed JSON: " + jsonSyntaxMessage(data, err)
		}
		if _, ok := v.(map[string]any); !ok {
			return "must be a JSON object"
		}
	case SpecYAML:
		var n yaml.Node
		if err := yaml.Unmarshal(data, &n); err != nil {
			return "is not well-formed YAML: " + err.Error()
		}
		if len(n.Content) != 1 || n.Content[0].Kind != yaml.MappingNode {
			return "must be a YAML mapping"
		}
	}
	return ""
}

// jsonSyntaxMessage says where a JSON syntax error is, by line and column.
func jsonSyntaxMessage(data []byte, err error) string {
	se, ok := err.(*json.SyntaxError)
	if !ok {
		return err.Error()
	}
	before := data[:min(int(se.Offset), len(data))]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("%s at line %d, column %d", se.Error(), line, col-1)
}

// NameFrom turns a document's title into a name: SanitizeName of its
// lower case ("Swagger Petstore" is swagger-petstore).
func NameFrom(title string) string { return SanitizeName(strings.ToLower(title)) }

// SanitizeName turns s (a title, an operationId) into a name by the name
// rule: every character the rule refuses replaced by '-', runs of '-'
// joined, leading and trailing punctuation trimmed, at most 128 bytes. It
// returns "" if nothing usable is left.
func SanitizeName(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '~':
			b.WriteRune(c)
		case !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	name := b.String()
	trim := func(n string) string {
		return strings.TrimFunc(n, func(c rune) bool { return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') })
	}
	name = trim(name)
	if len(name) > 128 {
		name = trim(name[:128])
	}
	return name
}

// DocumentField names a place in a spec's document in a field error: its
// JSON pointer, or "document" for the whole of it (pointer "").
func DocumentField(pointer string) string {
	if pointer == "" {
		return "document"
	}
	return pointer
}
