package admin

import (
	"mime"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/config"
	"github.com/gatehouse/gatehouse/internal/media"
)

// configYAMLType is the media type of a configuration document in YAML, as
// the API answers it.
const configYAMLType = "application/yaml"

// configMediaTypes are the media types a configuration document is taken
// in, each to the one it is read as.
var configMediaTypes = map[string]string{
	jsonType:             jsonType,
	configYAMLType:       configYAMLType,
	"application/x-yaml": configYAMLType,
	"text/yaml":          configYAMLType,
}

// configBody is what PUT and POST of /config take: the document, in JSON
// or YAML, within ConfigMaxBytes.
var configBody = &bodyRule{
	mediaType: func(ct string) string {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || (params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8")) {
			return ""
		}
		return configMediaTypes[mt]
	},
	accepted: "application/json, application/yaml, application/x-yaml, text/yaml",
	limit:    func(o *Options) int64 { return o.ConfigMaxBytes },
}

// configEndpoint is /config: the draft as one document. GET dumps it,
// POST applies a document (creates and updates), PUT syncs one (also
// deletes what it lacks), each within the selected tags.
func configEndpoint() *endpoint {
	read := map[string]queryParam{"select_tags": checkSelectTags}
	write := map[string]queryParam{"select_tags": checkSelectTags, "dry_run": checkBool}
	return &endpoint{pattern: Prefix + "/config", negotiates: true, undated: true, body: configBody,
		methods: map[string]handlerFunc{
			http.MethodGet: getConfig, http.MethodHead: getConfig,
			http.MethodPost: applyConfig(false), http.MethodPut: applyConfig(true),
		},
		query: map[string]map[string]queryParam{http.MethodGet: read, http.MethodHead: read, http.MethodPost: write, http.MethodPut: write},
	}
}

// selectTags splits ?select_tags=a,b.
func selectTags(v string) []string {
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

func checkSelectTags(v string) string {
	tags := selectTags(v)
	if len(tags) == 0 {
		return "must list one or more tags, separated by commas"
	}
	if errs := gatehouse.CheckTags("select_tags", tags); len(errs) > 0 {
		return strings.TrimPrefix(errs[0].Field, "select_tags") + " " + errs[0].Message
	}
	return ""
}

func checkBool(v string) string {
	if v != "true" && v != "false" {
		return "must be true or false"
	}
	return ""
}

// draftETag is the ETag of the draft with tag.
func draftETag(tag string) string { return `"` + tag + `"` }

func getConfig(h *Handler, r *request) (*result, error) {
	asYAML, err := configAnswerType(r.Header.Get("Accept"))
	if err != nil {
		return nil, err
	}
	doc, tag, err := config.Dump(r.Context(), h.store, selectTags(r.query.Get("select_tags")))
	if err != nil {
		return nil, err
	}
	if im := r.Header.Get("If-Match"); im != "" && !matchesETag(im, draftETag(tag), false) {
		return nil, gatehouse.Errorf(gatehouse.EPRECONDITION, "If-Match does not match the draft's ETag %s.", draftETag(tag))
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && matchesETag(inm, draftETag(tag), true) {
		return &result{status: http.StatusNotModified, etag: draftETag(tag)}, nil
	}
	body, err := config.Encode(doc, asYAML)
	if err != nil {
		return nil, gatehouse.Internal(err)
	}
	contentType := jsonType
	if asYAML {
		contentType = configYAMLType
	}
	return &result{status: http.StatusOK, etag: draftETag(tag), contentType: contentType, raw: body}, nil
}

// configAnswerType reads Accept as the rest of the API reads it
// (internal/media: the most specific range decides): YAML if it weighs a
// YAML type above JSON, JSON if it admits it (a tie goes to JSON, the
// API's own type), else 406.
func configAnswerType(accept string) (asYAML bool, err error) {
	values := []string{accept}
	jsonQ, yamlQ := media.Weight(values, "application", "json"), 0
	for mt, as := range configMediaTypes {
		if typ, sub, ok := strings.Cut(mt, "/"); ok && as == configYAMLType {
			yamlQ = max(yamlQ, media.Weight(values, typ, sub))
		}
	}
	switch {
	case yamlQ > jsonQ:
		return true, nil
	case jsonQ > 0:
		return false, nil
	}
	return false, gatehouse.Errorf(gatehouse.ENOTACCEPTABLE, "The configuration is answered as application/json or application/yaml; the Accept header excludes both.")
}

// applyConfig is POST (apply: creates and updates) and, with prune, PUT
// (sync: also deletes what the document lacks), within the selected tags.
func applyConfig(prune bool) handlerFunc {
	return func(h *Handler, r *request) (*result, error) {
		// The answer is a change set, in JSON: refused before the body is
		// read if the client cannot take it.
		if !acceptsJSON(r.Header.Get("Accept")) {
			return nil, gatehouse.Errorf(gatehouse.ENOTACCEPTABLE, "This API produces application/json only; the Accept header excludes it.")
		}
		ifDraft, err := h.ifDraft(r)
		if err != nil {
			return nil, err
		}
		body, err := h.readBody(r)
		if err != nil {
			return nil, err
		}
		src, problems := config.Read(body)
		if len(problems) > 0 {
			return nil, config.ProblemsError(problems)
		}
		doc, problems := config.Decode(src.Root)
		if len(problems) > 0 {
			return nil, config.ProblemsError(problems)
		}
		cs, err := config.Apply(r.Context(), h.store, doc, config.ApplyOptions{
			SelectTags: selectTags(r.query.Get("select_tags")),
			Prune:      prune,
			DryRun:     r.query.Get("dry_run") == "true",
			IfDraft:    ifDraft,
		})
		if err != nil {
			return nil, err
		}
		return &result{status: http.StatusOK, body: cs, etag: draftETag(cs.NewDraft)}, nil
	}
}

// ifDraft is the draft tag If-Match requires, "" for none ("*", or no
// If-Match). One strong tag is left to Apply to compare, in its
// transaction; a list requires the current tag if it is among them. A
// weak or malformed tag never matches (If-Match compares strongly): such
// an If-Match, or a list without the current tag, is refused here (412).
func (h *Handler) ifDraft(r *request) (string, error) {
	im := strings.TrimSpace(r.Header.Get("If-Match"))
	if im == "" || im == "*" {
		return "", nil
	}
	if tags := strings.Split(im, ","); len(tags) == 1 {
		if tag, ok := strongTag(tags[0]); ok {
			return tag, nil
		}
	}
	current, err := h.store.DraftTag(r.Context())
	if err != nil {
		return "", err
	}
	if !matchesETag(im, draftETag(current), false) {
		return "", gatehouse.Errorf(gatehouse.EPRECONDITION, "If-Match does not match the draft's ETag %s (it compares strongly: a weak tag never matches).", draftETag(current))
	}
	return current, nil
}

// strongTag is the opaque part of a strong entity tag; ok is false for a
// weak or malformed one.
func strongTag(t string) (string, bool) {
	t = strings.TrimSpace(t)
	if len(t) > 2 && t[0] == '"' && t[len(t)-1] == '"' {
		return t[1 : len(t)-1], true
	}
	return "", false
}
