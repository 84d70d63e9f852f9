package openapi

import (
	"net/url"
	"strings"
)

// ServerBasePath is the path of the document's first server URL, its
// variables replaced by their defaults, without a trailing "/": "/v1" for
// https://api.example.com/v1/, "" for none or a URL without a path. It is
// what precedes the document's paths in a request's path when an openapi
// policy or a route import leaves base_path empty.
func (d *Document) ServerBasePath() string {
	if d.doc == nil || len(d.doc.Servers) == 0 || d.doc.Servers[0] == nil {
		return ""
	}
	s := d.doc.Servers[0]
	raw := s.URL
	for name, v := range s.Variables {
		if v != nil {
			raw = strings.ReplaceAll(raw, "{"+name+"}", v.Default)
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.TrimRight(u.Path, "/")
}

// BasePath is what precedes the document's paths in a request's path, for
// a configured base_path: "" means ServerBasePath, "/" none, anything else
// itself without a trailing "/".
func (d *Document) BasePath(configured string) string {
	if configured == "" {
		return d.ServerBasePath()
	}
	return strings.TrimRight(configured, "/")
}
