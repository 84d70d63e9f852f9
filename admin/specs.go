package admin

import (
	"errors"
	"net/http"
	"sort"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// A spec's body is its OpenAPI document itself, JSON or YAML, kept
// verbatim; its id and name, which the document has no place for, come
// from the query (?id=, ?name=). Without a name, one is taken from the
// document's info.title.
var specs = &kindSpec{
	kind: gatehouse.KindSpec, newRes: func() gatehouse.Resource { return gatehouse.NewSpec() },
	filters:  map[string]func(*gatehouse.Filter, string){"name": byName},
	createFn: createSpec, putFn: putSpec, body: specBody,
	summarize: func(res gatehouse.Resource) { res.(*gatehouse.Spec).Document = "" },
}

// specBody takes a document as any of gatehouse.SpecMediaTypes, within
// --spec-max-bytes.
var specBody = &bodyRule{
	mediaType: gatehouse.SpecMediaType,
	accepted:  specTypes(),
	limit:     func(o *Options) int64 { return o.SpecMaxBytes },
}

func specTypes() string {
	types := make([]string, 0, len(gatehouse.SpecMediaTypes))
	for t := range gatehouse.SpecMediaTypes {
		types = append(types, t)
	}
	sort.Strings(types)
	return strings.Join(types, ", ")
}

// specWriteQuery is what POST and PUT of a spec take in the query.
func specWriteQuery(withID bool) map[string]queryParam {
	q := map[string]queryParam{"name": func(v string) string {
		if !gatehouse.ValidName(v) {
			return gatehouse.NameRule
		}
		return ""
	}}
	if withID {
		q["id"] = func(v string) string {
			if !gatehouse.ValidID(v) {
				return gatehouse.IDRule
			}
			return ""
		}
	}
	return q
}

// specEndpoints are the endpoints under a spec: its document, and the
// import of routes from it.
func specEndpoints(owner *kindSpec) []*endpoint {
	item := Prefix + "/specs/{id}"
	return []*endpoint{
		{pattern: item + "/document", paramNames: []string{"id"}, kind: gatehouse.KindSpec, negotiates: true, owner: owner,
			methods: map[string]handlerFunc{http.MethodGet: getSpecDocument, http.MethodHead: getSpecDocument}},
		{pattern: item + "/import", paramNames: []string{"id"}, kind: gatehouse.KindSpec, owner: owner,
			methods: map[string]handlerFunc{http.MethodPost: importSpec}},
	}
}

// newSpec is the spec a POST or PUT body makes: the document as sent.
func newSpec(r *request, raw []byte) *gatehouse.Spec {
	s := gatehouse.NewSpec()
	s.ID, s.Name = r.query.Get("id"), r.query.Get("name")
	s.MediaType = gatehouse.SpecMediaType(r.Header.Get("Content-Type"))
	s.Document = string(raw)
	return s
}

func createSpec(h *Handler, r *request) (*result, error) {
	raw, err := h.readBody(r)
	if err != nil {
		return nil, err
	}
	s := newSpec(r, raw)
	if err := inQuery(h.validate(r, r.ep.owner, s)); err != nil {
		return nil, err
	}
	if s.ID == "" {
		s.ID = gatehouse.NewID()
	}
	if err := h.createRecord(r.Context(), s); err != nil {
		return nil, inQuery(err)
	}
	return &result{status: http.StatusCreated, body: s, version: s.Version, modified: s.UpdatedAt,
		location: r.ep.owner.location(r, s.ID)}, nil
}

// putSpec replaces the document; without ?name= the spec keeps its name,
// so that uploading a changed file again does not rename it.
func putSpec(h *Handler, r *request) (*result, error) {
	res, err := r.ep.owner.replace(h, r, func(raw []byte) (builder, error) {
		return func(current gatehouse.Resource) (gatehouse.Resource, error) {
			s := newSpec(r, raw)
			if s.Name == "" {
				s.Name = current.(*gatehouse.Spec).Name
			}
			return s, nil
		}, nil
	})
	return res, inQuery(err)
}

// inQuery names the spec's members that come from the query as the query
// parameters they are (query.name), as every other query error is named.
func inQuery(err error) error {
	var e *gatehouse.Error
	if !errors.As(err, &e) {
		return err
	}
	for i, f := range e.Fields {
		if f.Field == "id" || f.Field == "name" {
			e.Fields[i].Field = "query." + f.Field
		}
	}
	return e
}

// getSpecDocument answers the document as it was sent, in its media type,
// with the spec's ETag, so that a client can download what it uploaded.
func getSpecDocument(h *Handler, r *request) (*result, error) {
	res, err := r.ep.owner.load(h, r)
	if err != nil {
		return nil, err
	}
	s := res.(*gatehouse.Spec)
	if _, err := checkPreconditions(r.Request, &s.Meta); err != nil {
		return nil, err
	}
	if !accepts(r.Header.Get("Accept"), s.MediaType) {
		return nil, gatehouse.Errorf(gatehouse.ENOTACCEPTABLE, "This document is %s; the Accept header excludes it.", s.MediaType)
	}
	if noneMatch(r.Header.Get("If-None-Match"), s.Version) {
		return &result{status: http.StatusNotModified, version: s.Version, modified: s.UpdatedAt}, nil
	}
	return &result{status: http.StatusOK, version: s.Version, modified: s.UpdatedAt,
		contentType: s.MediaType, raw: []byte(s.Document)}, nil
}
