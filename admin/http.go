package admin

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Media types the API takes, by method.
const (
	jsonType       = "application/json"
	mergePatchType = "application/merge-patch+json"
)

// checkBodyHeaders refuses, before any of the body is read, a body of the
// wrong media type or in a content coding (415), or a declared length over
// the limit (413).
func (h *Handler) checkBodyHeaders(w http.ResponseWriter, r *http.Request) error {
	var want, advertise string
	switch r.Method {
	case http.MethodPost:
		want, advertise = jsonType, "Accept-Post"
	case http.MethodPut:
		want = jsonType
	case http.MethodPatch:
		want, advertise = mergePatchType, "Accept-Patch"
	default:
		return nil
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != want || (params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8")) {
		if advertise != "" {
			w.Header().Set(advertise, want)
		}
		return gatehouse.Errorf(gatehouse.EMEDIATYPE, "The body of %s must be %s (UTF-8).", r.Method, want)
	}
	if err := checkContentEncoding(w, r.Header.Values("Content-Encoding")); err != nil {
		return err
	}
	if r.ContentLength > h.opts.MaxBodyBytes {
		return tooLarge(h.opts.MaxBodyBytes)
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
	body, err := io.ReadAll(io.LimitReader(r.Body, h.opts.MaxBodyBytes+1))
	switch {
	case err != nil:
		return nil, gatehouse.BodyUnreadable(err)
	case int64(len(body)) > h.opts.MaxBodyBytes:
		return nil, tooLarge(h.opts.MaxBodyBytes)
	}
	return body, nil
}

// acceptsJSON reports whether an Accept header admits application/json
// (or the problem+json of errors): absent, */*, application/*, or the type
// itself, with a non-zero q.
func acceptsJSON(accept string) bool {
	if strings.TrimSpace(accept) == "" {
		return true
	}
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if q, err := strconv.ParseFloat(params["q"], 64); err == nil && q <= 0 {
			continue
		}
		switch mt {
		case "*/*", "application/*", jsonType, "application/problem+json":
			return true
		}
	}
	return false
}

// checkPreconditions evaluates If-Match and If-Unmodified-Since against the
// current state (RFC 9110 §13.2.2): a failed one is 412 and nothing is
// written. It reports whether the request was conditional at all.
func checkPreconditions(r *http.Request, m *gatehouse.Meta) (bool, error) {
	if im := r.Header.Get("If-Match"); im != "" {
		if !matchesETag(im, etag(m.Version), false) {
			return true, gatehouse.Errorf(gatehouse.EPRECONDITION,
				"If-Match does not match the current ETag %s; fetch the resource and retry.", etag(m.Version))
		}
		return true, nil
	}
	if ius := r.Header.Get("If-Unmodified-Since"); ius != "" {
		t, err := http.ParseTime(ius)
		if err != nil {
			// An invalid date is ignored, as RFC 9110 requires.
			return false, nil
		}
		if m.UpdatedAt.Truncate(time.Second).After(t) {
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
