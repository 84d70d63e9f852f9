package config

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/doctree"
)

// CheckOptions says how a document is judged.
type CheckOptions struct {
	// SelectTags are the tags of the part of the configuration the
	// document manages: every entry must carry all of them.
	SelectTags []string
	// External: references to ids the document lacks are left to the
	// store to judge (the server; offline validation with selected tags).
	External bool
	// Fresh judges every entry as new, as a node serving files alone
	// (serve --config) does: no store keeps a secret the document omits,
	// so a credential needs its key or password (or hash), and an HS256
	// key its secret.
	Fresh bool
}

// Check judges a document alone, as the admin API judges each resource,
// plus what only a whole document can get wrong (duplicate ids, clashing
// unique keys, references among its entries, selected tags). References
// to ids the document does not hold are problems unless opts.External.
// It does not change doc.
func Check(doc *Document, opts CheckOptions) []Problem {
	_, problems := judge(doc, opts, nil)
	return problems
}

// entry is one resource of a document as the store would keep it,
// normalised, with its place in the document.
type entry struct {
	pointer string
	res     gatehouse.Resource
	// secret is a credential's secret as the document gives it; the
	// resource itself holds none.
	secret secret
}

// secret is what a document gives of a credential's secret: at most one
// of the plain and the hashed form.
type secret struct {
	key, keyHash, password, passwordHash string
}

// currentFunc returns the resource of kind and id as the store holds it,
// as the admin API shows it (write-only members hidden), or nil: what an
// entry that omits write-only members keeps.
type currentFunc func(kind gatehouse.Kind, id string) gatehouse.Resource

// judge converts every entry of doc to its resource and judges it; current,
// if set, gives the store's resource an entry updates, whose write-only
// and server-set members the entry keeps (as PUT keeps them). Entries come
// in creation order: specs, policies, services, routes, consumers,
// credentials, each kind in document order.
func judge(doc *Document, opts CheckOptions, current currentFunc) ([]*entry, []Problem) {
	j := &judgement{opts: opts, current: current}
	for _, e := range gatehouse.CheckTags("select_tags", opts.SelectTags) {
		j.problem("", gatehouse.EINVALID, fmt.Sprintf("the selected tag %s %s", strings.TrimPrefix(e.Field, "select_tags"), e.Message))
	}
	for i, s := range doc.Specs {
		j.add(fmt.Sprintf("/specs/%d", i), specResource(s), secret{})
	}
	for i, p := range doc.Policies {
		j.add(fmt.Sprintf("/policies/%d", i), p, secret{})
	}
	for i, s := range doc.Services {
		j.add(fmt.Sprintf("/services/%d", i), s, secret{})
	}
	for i, r := range doc.Routes {
		j.add(fmt.Sprintf("/routes/%d", i), r, secret{})
	}
	for i, c := range doc.Consumers {
		if c == nil {
			c = &Consumer{}
		}
		j.add(fmt.Sprintf("/consumers/%d", i), &c.Consumer, secret{})
	}
	for i, c := range doc.Consumers {
		if c == nil {
			continue
		}
		for k, cred := range c.Credentials {
			j.credential(fmt.Sprintf("/consumers/%d/credentials/%d", i, k), c, cred)
		}
	}
	j.checkDocument()
	return j.entries, j.problems
}

type judgement struct {
	opts     CheckOptions
	current  currentFunc
	entries  []*entry
	problems []Problem
}

func (j *judgement) problem(pointer string, code gatehouse.Code, msg string) {
	j.problems = append(j.problems, Problem{Pointer: pointer, Message: msg, Code: code})
}

// add copies res (so that judging does not change the document), judges
// it alone and keeps it as an entry.
func (j *judgement) add(pointer string, res gatehouse.Resource, sec secret) *entry {
	res = clone(res)
	if res == nil {
		j.problem(pointer, gatehouse.EINVALID, "must be an object")
		return nil
	}
	id := res.Base().ID
	if id == "" {
		j.problem(pointer+"/id", gatehouse.EINVALID, "is required: a document's entries are matched to the store's by id")
	}
	// What the store or the server sets is not the document's to give
	// (a pasted GET carries it): ignored, as PUT ignores it.
	*res.Base() = gatehouse.Meta{ID: id}
	var cur gatehouse.Resource
	if j.current != nil && id != "" {
		cur = j.current(res.Kind(), id)
	}
	gatehouse.KeepHidden(res, cur)
	gatehouse.KeepServerSet(res, cur)
	if j.current == nil && !j.opts.Fresh {
		// Judged without a store, a write-only member the entry omits
		// may be the store's to keep (a dump omits them): judged as
		// given. Apply judges it with the store's.
		standInForHidden(res)
	}
	j.judgeAlone(pointer, res)
	e := &entry{pointer: pointer, res: res, secret: sec}
	j.entries = append(j.entries, e)
	return e
}

// judgeAlone runs the resource's own checks, the admin API's, with each
// field named by its pointer in the document.
func (j *judgement) judgeAlone(pointer string, res gatehouse.Resource) {
	bad, semantic := gatehouse.NormalizeAndCheck(res)
	for _, f := range bad {
		j.problem(FieldPointer(pointer, f.Field), gatehouse.EINVALID, f.Message)
	}
	for _, f := range semantic {
		j.problem(FieldPointer(pointer, f.Field), gatehouse.EUNPROCESSABLE, f.Message)
	}
}

// clone deep-copies a resource through its JSON, nil for a nil one.
func clone(res gatehouse.Resource) gatehouse.Resource {
	if res == nil || isNil(res) {
		return nil
	}
	b, err := json.Marshal(res)
	if err != nil {
		return nil
	}
	out := gatehouse.New(res.Kind())
	if json.Unmarshal(b, out) != nil {
		return nil
	}
	return out
}

func isNil(res gatehouse.Resource) bool {
	switch r := res.(type) {
	case *gatehouse.Service:
		return r == nil
	case *gatehouse.Route:
		return r == nil
	case *gatehouse.Policy:
		return r == nil
	case *gatehouse.Consumer:
		return r == nil
	case *gatehouse.Spec:
		return r == nil
	case *gatehouse.Credential:
		return r == nil
	}
	return false
}

// placeholderHMACSecret stands in, while a policy is judged without a
// store, for an HS256 secret the entry omits.
var placeholderHMACSecret = strings.Repeat("x", gatehouse.MinHMACSecret)

// standInForHidden gives each HS256 key of an auth policy's config that has
// no secret a placeholder, so that judging it alone does not ask for what
// the store may keep.
func standInForHidden(res gatehouse.Resource) {
	if s, ok := res.(*gatehouse.Service); ok {
		s.StandInForHiddenKey() // a TLS client key, likewise
		return
	}
	p, ok := res.(*gatehouse.Policy)
	if !ok || p.Type != gatehouse.PolicyAuth {
		return
	}
	var cfg map[string]any
	dec := json.NewDecoder(strings.NewReader(string(p.Config)))
	dec.UseNumber()
	if dec.Decode(&cfg) != nil {
		return
	}
	jwt, _ := cfg["jwt"].(map[string]any)
	keys, _ := jwt["keys"].([]any)
	changed := false
	for _, k := range keys {
		if key, ok := k.(map[string]any); ok && key["alg"] == "HS256" && (key["secret"] == nil || key["secret"] == "") {
			key["secret"], changed = placeholderHMACSecret, true
		}
	}
	if !changed {
		return
	}
	if b, err := json.Marshal(cfg); err == nil {
		p.Config = b
	}
}

// specResource is the spec the server keeps for a document's spec: the
// document as text, in its media type.
func specResource(s *Spec) gatehouse.Resource {
	if s == nil {
		return (*gatehouse.Spec)(nil)
	}
	out := &gatehouse.Spec{Meta: s.Meta, Tagged: s.Tagged, Name: s.Name, MediaType: s.MediaType}
	switch d := s.Document.(type) {
	case nil:
	case string:
		out.Document = d
	default:
		if b, err := json.Marshal(d); err == nil {
			out.Document = string(b)
		}
	}
	if out.MediaType == "" {
		out.MediaType = gatehouse.SpecJSON
		if _, isText := s.Document.(string); isText && !json.Valid([]byte(out.Document)) {
			out.MediaType = gatehouse.SpecYAML
		}
	}
	return out
}

// keyHashPattern is a key's SHA-256 as HashToken writes it.
var keyHashPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// passwordHashPattern is HashPassword's form, its iterations captured
// (their bounds are gatehouse.CheckPasswordIterations').
var passwordHashPattern = regexp.MustCompile(`^pbkdf2-sha256\$([1-9][0-9]{0,8})\$[A-Za-z0-9+/]{16,}\$[A-Za-z0-9+/]{16,}$`)

// placeholderPassword stands in, while a credential is judged, for a
// password the document does not give: the admin API requires one on
// creation, a document may keep the stored one.
const placeholderPassword = "placeholder-password"

// credential judges a credential nested under consumer c: its own
// consumer_id must be absent or c's, and its secret given at most once.
func (j *judgement) credential(pointer string, c *Consumer, cred *Credential) {
	if cred == nil {
		j.problem(pointer, gatehouse.EINVALID, "must be an object")
		return
	}
	res := cred.Credential
	if res.ConsumerID != "" && res.ConsumerID != c.ID {
		j.problem(pointer+"/consumer_id", gatehouse.EINVALID, "must be absent or match the consumer the credential is nested under")
	}
	// Its tags are its own, as every entry's: inherited, they could not
	// say "none", and a dump of an untagged credential under a tagged
	// consumer would not read back as itself.
	res.ConsumerID = c.ID
	sec := secret{key: res.Key, keyHash: cred.KeyHash, password: res.Password, passwordHash: cred.PasswordHash}
	bad := func(field, msg string) { j.problem(pointer+"/"+field, gatehouse.EINVALID, msg) }
	if sec.key != "" && sec.keyHash != "" {
		bad("key_hash", "must be absent when key is given: give the key or its hash")
	}
	if sec.password != "" && sec.passwordHash != "" {
		bad("password_hash", "must be absent when password is given: give the password or its hash")
	}
	if sec.keyHash != "" && !keyHashPattern.MatchString(sec.keyHash) {
		bad("key_hash", "must be the key's SHA-256 as 64 lowercase hexadecimal digits")
	}
	if sec.passwordHash != "" {
		if m := passwordHashPattern.FindStringSubmatch(sec.passwordHash); m == nil {
			bad("password_hash", "must be a password hash as gatehouse writes it (pbkdf2-sha256$iterations$salt$hash)")
		} else if n, _ := strconv.Atoi(m[1]); gatehouse.CheckPasswordIterations(n) != "" {
			bad("password_hash", gatehouse.CheckPasswordIterations(n))
		}
	}
	switch res.Type {
	case gatehouse.CredentialKeyAuth:
		if sec.passwordHash != "" {
			bad("password_hash", "belongs to basic-auth credentials only")
		}
	case gatehouse.CredentialBasicAuth:
		if sec.keyHash != "" {
			bad("key_hash", "belongs to key-auth credentials only")
		}
		if res.Password == "" {
			res.Password = placeholderPassword
		}
	}
	e := j.add(pointer, &res, sec)
	if e == nil {
		return
	}
	e.res.(*gatehouse.Credential).Redact()
	if j.opts.Fresh {
		if p := missingSecret(e); p != nil {
			j.problems = append(j.problems, *p)
		}
	}
}

// missingSecret is the problem of a new credential without a secret,
// nil if it has one: a generated one would be shown to no one.
func missingSecret(e *entry) *Problem {
	switch e.res.(*gatehouse.Credential).Type {
	case gatehouse.CredentialKeyAuth:
		if e.secret.hashedKey() == "" {
			return &Problem{Pointer: e.pointer + "/key", Code: gatehouse.EUNPROCESSABLE,
				Message: "is required for a new credential (or key_hash): a generated key would be shown to no one"}
		}
	case gatehouse.CredentialBasicAuth:
		if e.secret.password == "" && e.secret.passwordHash == "" {
			return &Problem{Pointer: e.pointer + "/password", Code: gatehouse.EUNPROCESSABLE,
				Message: "is required for a new credential (or password_hash)"}
		}
	}
	return nil
}

// checkDocument judges what only the whole document can get wrong:
// duplicate ids, clashing unique keys, references, selected tags.
func (j *judgement) checkDocument() {
	byID := map[gatehouse.Kind]map[string]*entry{}
	byKey := map[gatehouse.Kind]map[string]*entry{}
	for _, e := range j.entries {
		kind, id := e.res.Kind(), e.res.Base().ID
		if byID[kind] == nil {
			byID[kind], byKey[kind] = map[string]*entry{}, map[string]*entry{}
		}
		if id != "" {
			if first := byID[kind][id]; first != nil {
				j.problems = append(j.problems, Problem{Pointer: e.pointer + "/id", Other: first.pointer + "/id", Code: gatehouse.EUNPROCESSABLE,
					Message: fmt.Sprintf("repeats the id %q of %s", id, first.pointer)})
			} else {
				byID[kind][id] = e
			}
		}
		for _, key := range uniqueKeys(e) {
			if first := byKey[kind][key]; first != nil && first != e {
				j.problems = append(j.problems, Problem{Pointer: e.pointer, Other: first.pointer, Code: gatehouse.EUNPROCESSABLE,
					Message: clashMessage(first.pointer, key)})
				break
			}
			byKey[kind][key] = e
		}
	}
	for _, e := range j.entries {
		refs := gatehouse.FieldRefs(e.res)
		targets := make([]gatehouse.Resource, len(refs))
		for i, fr := range refs {
			target := byID[fr.Ref.Kind][fr.Ref.ID]
			if target == nil && j.opts.External {
				continue
			}
			var res gatehouse.Resource
			if target != nil {
				res = target.res
			}
			targets[i] = res
			if msg := gatehouse.CheckRef(fr, res); msg != "" {
				j.problem(FieldPointer(e.pointer, fr.Field), gatehouse.EUNPROCESSABLE, msg)
			}
		}
		for _, fe := range gatehouse.CheckRefsTogether(refs, targets) {
			j.problem(FieldPointer(e.pointer, fe.Field), gatehouse.EUNPROCESSABLE, fe.Message)
		}
		if len(j.opts.SelectTags) > 0 && !gatehouse.HasTags(e.res, j.opts.SelectTags) {
			j.problem(e.pointer+"/tags", gatehouse.EUNPROCESSABLE,
				fmt.Sprintf("must include every selected tag (%s): the entry would be outside the part of the configuration this document manages", strings.Join(j.opts.SelectTags, ", ")))
		}
		if pol, ok := e.res.(*gatehouse.Policy); ok && pol.Global && len(j.opts.SelectTags) > 0 {
			j.problem(e.pointer+"/global", gatehouse.EUNPROCESSABLE,
				"must be false with selected tags: a global policy acts on every route, beyond the selected tags; manage it without --select-tag")
		}
	}
}

// uniqueKeys are the keys the store would refuse a second record of the
// kind to hold: Index().Unique, and for a key-auth credential the hash of
// its key, which Index cannot know here.
func uniqueKeys(e *entry) []string {
	if c, ok := e.res.(*gatehouse.Credential); ok {
		if c.Type == gatehouse.CredentialKeyAuth {
			if h := e.secret.hashedKey(); h != "" {
				return []string{gatehouse.KeyAuthLookup(h)}
			}
			return nil
		}
	}
	return slices.DeleteFunc(slices.Clone(e.res.Index().Unique), func(k string) bool { return k == "name:" })
}

// hashedKey is the key's hash as the store keeps it, "" if none is given.
func (s secret) hashedKey() string {
	if s.key != "" {
		return gatehouse.HashToken(s.key)
	}
	return s.keyHash
}

// clashMessage says that an entry shares the unique key with the entry
// at first, in words rather than the key's internal form.
func clashMessage(first, key string) string {
	kind, v, _ := strings.Cut(key, ":")
	switch kind {
	case "name":
		return fmt.Sprintf("clashes with %s: both have the name %q", first, v)
	case "key":
		return fmt.Sprintf("clashes with %s: both have the same API key", first)
	case "basic":
		return fmt.Sprintf("clashes with %s: both have the username %q", first, v)
	case "match":
		// Route.MatchKeys' form: "priority METHOD host path", "*" for any.
		if f := strings.SplitN(v, " ", 4); len(f) == 4 {
			return fmt.Sprintf("matches the same requests as %s (priority %s, %s, %s, path %s)",
				first, f[0], anyOr(f[1], "method", "method "+f[1]), anyOr(f[2], "host", "host "+f[2]), f[3])
		}
		return fmt.Sprintf("matches the same requests as %s", first)
	}
	return fmt.Sprintf("clashes with %s", first)
}

// anyOr is "any what" for "*", else named.
func anyOr(v, what, named string) string {
	if v == "*" {
		return "any " + what
	}
	return named
}

// FieldPointer turns the field a resource's check names ("targets[1].weight",
// "config.spec_id", or a JSON pointer into a spec's document) into a JSON
// pointer under the entry at base (/services/0/targets/1/weight).
func FieldPointer(base, field string) string {
	if strings.HasPrefix(field, "/") {
		return base + "/document" + field
	}
	var b strings.Builder
	b.WriteString(base)
	for seg := range strings.SplitSeq(field, ".") {
		name, rest, _ := strings.Cut(seg, "[")
		b.WriteString("/" + doctree.EscapeToken(name))
		for rest != "" {
			idx, after, ok := strings.Cut(rest, "]")
			if _, err := strconv.Atoi(idx); !ok || err != nil {
				b.WriteString("[" + rest)
				break
			}
			b.WriteString("/" + idx)
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return b.String()
}
