// Package kong converts a Kong declarative configuration (kong.yml,
// _format_version 1.1, 2.1 or 3.0, YAML or JSON) into a gatehouse
// configuration document.
//
// Whatever has an exact gatehouse equivalent is converted; whatever has
// none is left out, or converted with a difference, and reported as a
// Dropped entry with its place in the input and why, and the rest is
// still converted. A route is never served with less than Kong checked:
// one whose match condition (headers, SNIs, a regex with no exact
// pattern, ...) or whose guarding plugin (authentication, acl,
// ip-restriction, request-termination) does not convert is left out. So
// is one guarded by a jwt plugin whose keys more than one consumer holds:
// Kong ties each secret to its consumer, gatehouse lets any of a policy's
// keys sign for any consumer. A cors plugin guards nothing: one that does
// not convert (every origin with credentials, only regex origins) is
// reported and its routes kept, browsers then refusing their cross-origin
// reads.
//
// Converting the same input twice gives the same document but for the
// password hashes, whose salts are random. API keys and passwords are
// written only as hashes; HS256 jwt secrets and the private keys of
// services' client certificates are written in the clear, as the data
// plane needs them (the admin API never shows them), and each is reported
// so that the operator moves it to ${{ env "GATEHOUSE_VAR_..." }}.
//
// Differences every conversion has, and so not reported entity by
// entity: gatehouse never forwards credentials upstream (Kong's
// hide_credentials: false did) and sends X-Consumer-ID (the gatehouse
// consumer id), X-Consumer-Username and X-Consumer-Groups, not
// X-Consumer-Custom-ID, X-Credential-Identifier or X-Anonymous-Consumer;
// rate limits count by GCRA (a period's requests may come at once, then
// evenly) where Kong counts fixed windows, and a plugin's several windows
// become several rate-limit policies, all of which apply, rather than
// the tightest alone; Kong's route precedence (more match conditions
// first, regex paths before prefixes by regex_priority) and gatehouse's
// (priority, then host, path and method specificity) agree on ordinary
// configurations but can differ where routes overlap; group names
// compare case-insensitively in gatehouse; Kong verifies an https
// upstream's certificate only with tls_verify true (nginx's default is
// off), gatehouse unless tls.verify is false; a cors policy answers a
// preflight 204 where Kong 3 answers 200, and refuses (403) one asking for
// an origin, method or header it does not allow, where Kong answered
// without the fields and left the browser to refuse; Kong's cors added
// Access-Control-Allow-Origin to requests without Origin
// (allow_origin_absent), which browsers never read.
package kong

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/config"
	"go.yaml.in/yaml/v4"
)

// Dropped is one thing in the input that was not converted, or converted
// with a difference the operator must know of.
type Dropped struct {
	// Pos is its place in the input (line and column; File is the name
	// given to Convert).
	Pos config.Pos
	// Path names it in the input, as services[0].routes[1].plugins[2].
	Path string
	// What it is: an entity ("route orders") or a member ("write_timeout").
	What string
	// Why it was not converted, or how the conversion differs.
	Why string
}

func (d Dropped) String() string {
	return fmt.Sprintf("%s: %s: %s: %s", d.Pos.String(), d.Path, d.What, d.Why)
}

// Format versions Convert reads.
var formatVersions = []string{"1.1", "2.1", "3.0"}

// Convert converts the Kong declarative configuration data, read from
// the file name (used only in positions). It returns an error only when
// data is not a Kong declarative configuration at all (not YAML or JSON,
// not a mapping, no _format_version, or one Convert does not read);
// everything it cannot convert is in the Dropped list, in input order.
func Convert(data []byte, name string) (doc *config.Document, dropped []Dropped, err error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, errors.New("not a Kong declarative configuration: the file is empty")
		}
		return nil, nil, fmt.Errorf("not a Kong declarative configuration: %v", err)
	}
	c := &conv{file: name, doc: &config.Document{FormatVersion: config.FormatVersion},
		ids: map[gatehouse.Kind]map[string]bool{}, names: map[gatehouse.Kind]map[string]bool{}}
	defer func() {
		if v := recover(); v != nil {
			if _, ok := v.(errTooLarge); !ok {
				panic(v)
			}
			doc, dropped, err = nil, nil, fmt.Errorf("not converted: %v", errTooLarge{})
		}
	}()
	top := &root
	if top.Kind == yaml.DocumentNode && len(top.Content) == 1 {
		top = top.Content[0]
	}
	o := c.object(top)
	if o == nil {
		return nil, nil, errors.New("not a Kong declarative configuration: the top level is not a mapping")
	}
	v, ok := c.str(o, "_format_version")
	if !ok {
		return nil, nil, errors.New("not a Kong declarative configuration: _format_version is missing")
	}
	known := false
	for _, f := range formatVersions {
		known = known || v == f
	}
	if !known {
		return nil, nil, fmt.Errorf("_format_version %q is not one this converter reads (%s)", v, strings.Join(formatVersions, ", "))
	}
	c.version = v
	c.convert(o)
	// Plugins are judged after every entity is read; report in input order.
	slices.SortStableFunc(c.dropped, func(a, b Dropped) int {
		return cmp.Or(cmp.Compare(a.Pos.Line, b.Pos.Line), cmp.Compare(a.Pos.Column, b.Pos.Column))
	})
	return c.doc, c.dropped, nil
}

// conv is one conversion's state.
type conv struct {
	file    string
	version string
	visits  int
	// transform is _transform: false means credentials' secrets were
	// already hashed by Kong.
	transform bool
	doc       *config.Document
	dropped   []Dropped
	ids       map[gatehouse.Kind]map[string]bool
	names     map[gatehouse.Kind]map[string]bool

	upstreams  map[string]*upstream // by name and id
	services   []*service
	serviceBy  map[string]*service // by Kong id and name
	routes     []*route
	routeBy    map[string]*route
	consumers  []*consumer
	consumerBy map[string]*consumer
	plugins    []*plugin
	// jwtSecrets are the consumers' jwt_secrets, for the jwt plugins.
	jwtSecrets []*jwtSecret
	// fileTags are decK's _info.select_tags, which every entity carries.
	fileTags []string
	// passwords wait to be hashed, all at once (hashPasswords).
	passwords []password
	// certs and caCerts are the certificates and ca_certificates
	// entities by id, which services name for upstream TLS; pemOrder
	// holds both in input order.
	certs, caCerts map[string]*pemEntity
	pemOrder       []*pemEntity
	// seen holds the unique keys of the credentials converted (a key's
	// hash, a basic-auth username), each with its path.
	seen map[string]string
}

func (c *conv) pos(n *yaml.Node) config.Pos {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	p := config.Pos{File: c.file}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	return p
}

// drop records what was not converted, at node n.
func (c *conv) drop(n *yaml.Node, path, what, why string) {
	c.dropped = append(c.dropped, Dropped{Pos: c.pos(n), Path: path, What: what, Why: why})
}

// dropField records a member of o that was not converted.
func (c *conv) dropField(o *obj, path, key, why string) {
	f := o.m[key]
	what := key
	if n := c.deref(f.value); n != nil && n.Kind == yaml.ScalarNode {
		what = key + " " + n.Value
	}
	c.drop(f.keyN, path+"."+key, what, why)
}

// topLevel says what becomes of each top-level member of a Kong file;
// those not listed are reported as having no equivalent.
var topLevel = map[string]string{
	"_format_version": "", "_transform": "", "_comment": "", "_workspace": "", "_info": "",
	"services": "", "routes": "", "consumers": "", "plugins": "", "upstreams": "", "targets": "",
	"keyauth_credentials": "", "basicauth_credentials": "", "jwt_secrets": "", "acls": "",
	"certificates": "", "ca_certificates": "",
	"snis":                  listenerCerts,
	"hmacauth_credentials":  "gatehouse has no HMAC authentication",
	"oauth2_credentials":    "gatehouse has no OAuth 2.0 provider",
	"mtls_auth_credentials": "gatehouse has no mutual-TLS authentication",
	"vaults":                "gatehouse substitutes secrets from GATEHOUSE_VAR_ environment variables (${{ env \"GATEHOUSE_VAR_X\" }}), not vaults",
	"consumer_groups":       "gatehouse consumers carry their groups themselves (acls are converted to groups); consumer groups have no equivalent",
	"parameters":            "Kong's cluster parameters have no gatehouse equivalent",
}

func (c *conv) convert(o *obj) {
	c.transform = c.boolean(o, "_transform", true)
	c.seen = map[string]string{}
	if info := c.object(o.get("_info")); info != nil {
		// decK's select_tags: every entity of the file carries them.
		c.fileTags = c.tags(info, "_info", "select_tags")
		if info.has("defaults") {
			c.dropField(info, "_info", "defaults", "decK's entity defaults are not applied; the conversion uses Kong's own defaults")
		}
	}
	c.upstreams = map[string]*upstream{}
	c.serviceBy, c.routeBy, c.consumerBy = map[string]*service{}, map[string]*route{}, map[string]*consumer{}
	for _, k := range o.keys {
		why, known := topLevel[k]
		if !known {
			why = "is not a Kong entity this converter knows"
		}
		if why != "" && !isNull(o.m[k].value) {
			c.drop(o.m[k].keyN, k, k, why)
		}
	}
	// Upstreams first: a service's host may name one.
	for i, n := range c.items(o.get("upstreams")) {
		c.readUpstream(n, fmt.Sprintf("upstreams[%d]", i))
	}
	for i, n := range c.items(o.get("targets")) {
		c.readTopTarget(n, fmt.Sprintf("targets[%d]", i))
	}
	c.certs = c.readPEMEntities(o, "certificates")
	c.caCerts = c.readPEMEntities(o, "ca_certificates")
	for i, n := range c.items(o.get("services")) {
		c.readService(n, fmt.Sprintf("services[%d]", i))
	}
	c.reportUnusedPEM()
	for i, n := range c.items(o.get("routes")) {
		c.readRoute(n, fmt.Sprintf("routes[%d]", i), nil)
	}
	for i, n := range c.items(o.get("consumers")) {
		c.readConsumer(n, fmt.Sprintf("consumers[%d]", i))
	}
	for _, kind := range credentialKinds {
		for i, n := range c.items(o.get(kind)) {
			c.readCredential(kind, n, fmt.Sprintf("%s[%d]", kind, i), nil)
		}
	}
	for i, n := range c.items(o.get("plugins")) {
		c.readPlugin(n, fmt.Sprintf("plugins[%d]", i), scope{})
	}
	c.finishConsumers()
	c.finishPlugins()
	c.finishRoutes()
}

// Ids and names.

// newID returns a valid, unused id of kind built from the candidates, in
// order of preference: the first that is a valid id and free, else the
// first made valid and numbered until free.
func (c *conv) newID(kind gatehouse.Kind, candidates ...string) string {
	used := c.ids[kind]
	if used == nil {
		used = map[string]bool{}
		c.ids[kind] = used
	}
	for _, s := range candidates {
		if s != "" && gatehouse.ValidID(s) && !used[s] {
			used[s] = true
			return s
		}
	}
	base := ""
	for _, s := range candidates {
		if base = sanitize(s, 64, false); base != "" {
			break
		}
	}
	if base == "" {
		base = string(kind)
	}
	id := base
	for i := 2; used[id]; i++ {
		suffix := "-" + strconv.Itoa(i)
		id = shorten(base, 64-len(suffix)) + suffix
	}
	used[id] = true
	return id
}

// newName is newID for names (which may also hold '.' and '~').
func (c *conv) newName(kind gatehouse.Kind, candidates ...string) string {
	used := c.names[kind]
	if used == nil {
		used = map[string]bool{}
		c.names[kind] = used
	}
	base := ""
	for _, s := range candidates {
		if base = sanitize(s, 128, true); base != "" {
			break
		}
	}
	if base == "" {
		base = strings.TrimSuffix(string(kind), "s")
	}
	name := base
	for i := 2; used[strings.ToLower(name)]; i++ {
		suffix := "-" + strconv.Itoa(i)
		name = shorten(base, 128-len(suffix)) + suffix
	}
	used[strings.ToLower(name)] = true
	return name
}

// sanitize makes s a valid id (or, with name, a valid name): other
// characters become '-', leading ones that cannot start it are removed,
// and a value too long is cut and given a hash of the whole, so that two
// long values differing at the end stay different.
func sanitize(s string, limit int, name bool) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case name && (r == '.' || r == '~'):
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := strings.TrimLeft(b.String(), "-_.~")
	if len(out) > limit {
		sum := sha256.Sum256([]byte(s))
		out = shorten(out, limit-9) + "-" + hex.EncodeToString(sum[:4])
	}
	return out
}

func shorten(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// tags converts an entity's tags: those that are not gatehouse tag names,
// and those past gatehouse.MaxTags, are reported.
func (c *conv) tags(o *obj, path string, member ...string) []string {
	key := "tags"
	if len(member) > 0 {
		key = member[0]
	}
	var out []string
	seen := map[string]bool{}
	for i, n := range c.items(o.get(key)) {
		n = c.deref(n)
		p := fmt.Sprintf("%s.%s[%d]", path, key, i)
		switch {
		case n.Kind != yaml.ScalarNode || !gatehouse.ValidName(n.Value):
			c.drop(n, p, "tag "+strconv.Quote(n.Value), "is not a gatehouse tag: "+gatehouse.NameRule)
		case seen[n.Value]:
		case len(out) == gatehouse.MaxTags:
			c.drop(n, p, "tag "+strconv.Quote(n.Value), fmt.Sprintf("gatehouse resources carry at most %d tags", gatehouse.MaxTags))
		default:
			seen[n.Value] = true
			out = append(out, n.Value)
		}
	}
	for _, t := range c.fileTags {
		if !seen[t] && len(out) < gatehouse.MaxTags {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

// ref reads a foreign key as Kong's declarative format writes it: the
// referenced entity's name or id as a string, or a mapping with id or
// name.
func (c *conv) ref(o *obj, key string) (string, bool) {
	if s, ok := c.str(o, key); ok {
		return s, true
	}
	if r := c.object(o.get(key)); r != nil {
		if s, ok := c.str(r, "id"); ok {
			return s, true
		}
		if s, ok := c.str(r, "name"); ok {
			return s, true
		}
		if s, ok := c.str(r, "username"); ok {
			return s, true
		}
	}
	return "", false
}

// describe names an entity for What: its kind and its name or id.
func (c *conv) describe(kind string, o *obj, keys ...string) string {
	for _, k := range keys {
		if s, ok := c.str(o, k); ok && s != "" {
			return kind + " " + strconv.Quote(s)
		}
	}
	return kind
}
