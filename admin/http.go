package admin

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/media"
)

// Media types the API takes, by method.
const (
	jsonType       = "application/json"
	mergePatchType = "application/merge-patch+json"
)

// bodyRule is what an endpoint's POST and PUT take when it is not the
// API's JSON (a spec's document).
type bodyRule struct {
	// mediaType returns the media type a body of Content-Type ct is taken
	// as, or "" if it is not taken.
	mediaType func(ct string) string
	// accepted lists the media types taken, for Accept-Post and Accept.
	accepted string
	// limit is the body's size limit.
	limit func(o *Options) int64
}

// jsonBody is the rule of every body but a few: JSON, within MaxBodyBytes.
var jsonBody = &bodyRule{
	mediaType: func(ct string) string { return exactType(ct, jsonType) },
	accepted:  jsonType,
	limit:     func(o *Options) int64 { return o.MaxBodyBytes },
}

// mergePatchBody is the rule of every PATCH.
var mergePatchBody = &bodyRule{
	mediaType: func(ct string) string { return exactType(ct, mergePatchType) },
	accepted:  mergePatchType,
	limit:     func(o *Options) int64 { return o.MaxBodyBytes },
}

// exactType returns want if ct is want, in UTF-8 if it names a charset.
func exactType(ct, want string) string {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != want || (params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8")) {
		return ""
	}
	return want
}

// bodyRuleFor is the rule a request's body follows, or nil if its method
// takes none.
func bodyRuleFor(ep *endpoint, method string) *bodyRule {
	switch method {
	case http.MethodPost, http.MethodPut:
		if ep != nil && ep.body != nil {
			return ep.body
		}
		return jsonBody
	case http.MethodPatch:
		return mergePatchBody
	}
	return nil
}

// checkBodyHeaders refuses, before any of the body is read, a body of the
// wrong media type or in a content coding (415), or a declared length over
// the limit (413). A 415 says what is taken: Accept-Post for POST,
// Accept-Patch for PATCH, and for PUT, which has no header of its own,
// Accept (RFC 9110 §12.5.1 lets a response carry it for the content of a
// later request).
func (h *Handler) checkBodyHeaders(w http.ResponseWriter, r *http.Request, ep *endpoint) error {
	rule := bodyRuleFor(ep, r.Method)
	if rule == nil {
		return nil
	}
	if rule.mediaType(r.Header.Get("Content-Type")) == "" {
		advertise := map[string]string{http.MethodPost: "Accept-Post", http.MethodPut: "Accept", http.MethodPatch: "Accept-Patch"}[r.Method]
		w.Header().Set(advertise, rule.accepted)
		return gatehouse.Errorf(gatehouse.EMEDIATYPE, "The body of %s must be %s (UTF-8).", r.Method, strings.ReplaceAll(rule.accepted, ", ", " or "))
	}
	if err := checkContentEncoding(w, r.Header.Values("Content-Encoding")); err != nil {
		return err
	}
	if limit := rule.limit(&h.opts); r.ContentLength > limit {
		return tooLarge(limit)
	}
	return nil
}

// checkContentEncoding refuses a body in any content coding but identity
// with 415 and "Accept-Encoding: identity" (RFC 9110 §15.5.16). Admin
// bodies are small; decoding gzip would buy nothing but a decompression
// bomb to defend against, and a coding ignored would read a compressed
// body as JSON, or take a plain one labelled br.
func checkContentEncoding(w http.ResponseWriter, values []string) error {
	for _, v := range values {
		for _, coding := range strings.Split(v, ",") {
			if coding = strings.TrimSpace(coding); coding != "" && !strings.EqualFold(coding, "identity") {
				w.Header().Set("Accept-Encoding", "identity")
				return gatehouse.Errorf(gatehouse.EMEDIATYPE, "Request bodies in a content coding (%s) are not accepted; send the body uncompressed.", sanitize(coding))
			}
		}
	}
	return nil
}

func tooLarge(limit int64) error {
	return gatehouse.BodyTooLarge(limit)
}

// readBody reads the whole body within the size limit. This is the first
// read, so it is what sends 100 Continue to a client that asked for it.
func (h *Handler) readBody(r *request) ([]byte, error) {
	limit := h.opts.MaxBodyBytes
	if rule := bodyRuleFor(r.ep, r.Method); rule != nil {
		limit = rule.limit(&h.opts)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	switch {
	case err != nil:
		return nil, gatehouse.BodyUnreadable(err)
	case int64(len(body)) > limit:
		return nil, tooLarge(limit)
	}
	return body, nil
}

// acceptsJSON reports whether an Accept header admits application/json
// or the problem+json of errors.
func acceptsJSON(accept string) bool {
	return accepts(accept, jsonType) || accepts(accept, "application/problem+json")
}

// accepts reports whether an Accept header admits media type mt, read as
// the data plane reads Accept (internal/media): the most specific range
// that matches decides, so "application/yaml;q=0, */*" refuses YAML.
func accepts(accept, mt string) bool {
	r, ok := media.ParseRange(mt)
	return !ok || media.Acceptable([]string{accept}, []media.Range{r})
}

// checkPreconditions evaluates If-Match and If-Unmodified-Since against the
// current state (RFC 9110 §13.2.2): a failed one is 412 and nothing is
// written. It reports whether the request was conditional at all.
func checkPreconditions(r *http.Request, m *gatehouse.Meta) (bool, error) {
	return checkTagPreconditions(r, etag(m.Version), m.UpdatedAt)
}

// checkTagPreconditions is checkPreconditions for a representation whose
// ETag is tag and which last changed at modified.
func checkTagPreconditions(r *http.Request, tag string, modified time.Time) (bool, error) {
	if im := r.Header.Get("If-Match"); im != "" {
		if !matchesETag(im, tag, false) {
			return true, gatehouse.Errorf(gatehouse.EPRECONDITION,
				"If-Match does not match the current ETag %s; fetch the resource and retry.", tag)
		}
		return true, nil
	}
	if ius := r.Header.Get("If-Unmodified-Since"); ius != "" {
		t, err := http.ParseTime(ius)
		if err != nil {
			// An invalid date is ignored, as RFC 9110 requires.
			return false, nil
		}
		if modified.Truncate(time.Second).After(t) {
			return true, gatehouse.Errorf(gatehouse.EPRECONDITION,
				"The resource was modified after %s.", t.UTC().Format(http.TimeFormat))
		}
		return true, nil
	}
	return false, nil
}

// checkUntaggedPreconditions evaluates the preconditions of a request to a
// target without an ETag (a collection, the API document), for every
// method, as RFC 9110 does (§13.1.1). It has a current representation but
// no ETag, so If-Match "*" holds and any list of tags fails: 412, and
// nothing is written. It has no modification date either, so
// If-Unmodified-Since is ignored (§13.1.4).
func checkUntaggedPreconditions(r *http.Request) error {
	if im := r.Header.Get("If-Match"); im != "" && !matchesETag(im, "", false) {
		return gatehouse.Errorf(gatehouse.EPRECONDITION,
			`This resource has no ETag: only If-Match "*" matches it.`)
	}
	return nil
}

// noneMatch reports whether If-None-Match matches the current version, by
// weak comparison as RFC 9110 §13.1.2 prescribes for it.
func noneMatch(header string, version int64) bool {
	return header != "" && matchesETag(header, etag(version), true)
}

// matchesETag reports whether a list of entity tags (or "*") matches the
// current ETag want; with none (""), only "*" does. Strong comparison never
// matches a weak tag.
func matchesETag(header, want string, weak bool) bool {
	for _, tag := range strings.Split(header, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" {
			return true
		}
		if strings.HasPrefix(tag, "W/") {
			if !weak {
				continue
			}
			tag = tag[2:]
		}
		if want != "" && tag == want {
			return true
		}
	}
	return false
}

// parseQuery is url.ParseQuery that also refuses control characters and
// absurd lengths.
func parseQuery(raw string) (url.Values, error) {
	if len(raw) > 4096 {
		return nil, errors.New("is longer than 4096 bytes")
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, errors.New("is not valid URL query syntax")
	}
	for k, vs := range q {
		for _, s := range append([]string{k}, vs...) {
			for _, c := range s {
				if c < 0x20 || c == 0x7f {
					return nil, fmt.Errorf("holds a control character in %q", sanitize(k))
				}
			}
		}
	}
	return q, nil
}
