package kong

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/config"
	"go.yaml.in/yaml/v4"
)

// consumer is a Kong consumer being converted.
type consumer struct {
	gh       *config.Consumer
	kongID   string
	username string
	node     *yaml.Node
	path     string
	// jwt are the consumer's converted jwt secrets.
	jwt []*jwtSecret
}

// jwtSecret is a jwt_secrets credential: Kong finds it by Key, the value
// of the token's iss claim (the jwt plugin's key_claim_name).
type jwtSecret struct {
	consumer  *consumer
	key       string
	alg       string
	secret    string
	publicKey string
	node      *yaml.Node
	path      string
}

// The Kong credential entities Convert reads, top-level or nested in a
// consumer.
var credentialKinds = []string{"keyauth_credentials", "basicauth_credentials", "jwt_secrets", "acls"}

func (c *conv) readConsumer(n *yaml.Node, path string) {
	o := c.object(n)
	if o == nil {
		c.drop(n, path, "consumer", "is not a mapping")
		return
	}
	username, _ := c.str(o, "username")
	customID, _ := c.str(o, "custom_id")
	kid, _ := c.str(o, "id")
	cs := &consumer{kongID: kid, username: username, node: o.node, path: path}
	for _, k := range []string{kid, username} {
		if k != "" {
			c.consumerBy[k] = cs
		}
	}
	if username != "" && customID != "" {
		c.dropField(o, path, "custom_id", "gatehouse consumers have a name only; the upstream gets the name (X-Consumer-Username), and no X-Consumer-Custom-ID")
	}
	gh := &config.Consumer{Consumer: *gatehouse.NewConsumer()}
	gh.Name = c.newName(gatehouse.KindConsumer, username, customID, kid)
	gh.Tags = c.tags(o, path)
	cs.gh = gh
	c.consumers = append(c.consumers, cs)
	for _, kind := range credentialKinds {
		for i, cn := range c.items(o.get(kind)) {
			c.readCredential(kind, cn, fmt.Sprintf("%s.%s[%d]", path, kind, i), cs)
		}
	}
	for _, k := range []string{"hmacauth_credentials", "oauth2_credentials", "mtls_auth_credentials"} {
		if o.has(k) {
			c.dropField(o, path, k, topLevel[k])
		}
	}
	for i, p := range c.items(o.get("plugins")) {
		c.readPlugin(p, fmt.Sprintf("%s.plugins[%d]", path, i), scope{consumer: cs})
	}
}

// readCredential reads a credential nested in owner, or top-level (owner
// nil) naming its consumer.
func (c *conv) readCredential(kind string, n *yaml.Node, path string, owner *consumer) {
	o := c.object(n)
	if o == nil {
		return
	}
	if owner == nil {
		ref, _ := c.ref(o, "consumer")
		if owner = c.consumerBy[ref]; owner == nil {
			c.drop(o.node, path, strings.TrimSuffix(kind, "s"), fmt.Sprintf("names consumer %q, which this file does not hold", ref))
			return
		}
	}
	switch kind {
	case "keyauth_credentials":
		c.keyAuth(o, path, owner)
	case "basicauth_credentials":
		c.basicAuth(o, path, owner)
	case "jwt_secrets":
		c.jwtSecret(o, path, owner)
	case "acls":
		g, _ := c.str(o, "group")
		switch {
		case !gatehouse.ValidName(g):
			c.drop(o.node, path, "acl group "+strconv.Quote(g), "is not a gatehouse group name: "+gatehouse.NameRule)
		case len(owner.gh.Groups) == gatehouse.MaxGroups:
			c.drop(o.node, path, "acl group "+strconv.Quote(g), fmt.Sprintf("a gatehouse consumer has at most %d groups", gatehouse.MaxGroups))
		case !containsFold(owner.gh.Groups, g):
			owner.gh.Groups = append(owner.gh.Groups, g)
		}
	}
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// credential starts a gatehouse credential of owner.
func (c *conv) credential(o *obj, path string, owner *consumer, typ, suffix string) *config.Credential {
	kid, _ := c.str(o, "id")
	cr := &config.Credential{}
	cr.Type = typ
	cr.ID = c.newID(gatehouse.KindCredential, kid, fmt.Sprintf("%s-%s-%d", owner.gh.Name, suffix, len(owner.gh.Credentials)+1))
	cr.Tags = c.tags(o, path)
	if o.has("ttl") {
		c.dropField(o, path, "ttl", "gatehouse credentials do not expire; delete it when it should")
	}
	return cr
}

func (c *conv) keyAuth(o *obj, path string, owner *consumer) {
	key, ok := c.str(o, "key")
	switch {
	case !ok || key == "":
		c.drop(o.node, path, "key-auth credential", "has no key: Kong generates one, which this file does not know")
		return
	case len(key) < gatehouse.MinKeyLength || len(key) > gatehouse.MaxSecretLength || !printableASCII(key):
		c.drop(o.node, path, "key-auth credential", fmt.Sprintf("gatehouse keys are %d to %d printable ASCII characters; issue a new key", gatehouse.MinKeyLength, gatehouse.MaxSecretLength))
		return
	}
	if !c.unique("key:"+gatehouse.HashToken(key), o, path, "key-auth credential", "its key") {
		return
	}
	cr := c.credential(o, path, owner, gatehouse.CredentialKeyAuth, "key")
	// The file keeps the key's hash only, as the store does.
	cr.KeyHash = gatehouse.HashToken(key)
	owner.gh.Credentials = append(owner.gh.Credentials, cr)
}

func (c *conv) basicAuth(o *obj, path string, owner *consumer) {
	user, _ := c.str(o, "username")
	pw, ok := c.str(o, "password")
	switch {
	case !c.transform:
		c.drop(o.node, path, "basic-auth credential", "_transform: false says its password is Kong's hash (SHA-1 of the password and the consumer id), which gatehouse cannot verify; set a new password")
		return
	case !gatehouse.ValidName(user):
		c.drop(o.node, path, "basic-auth credential", "its username is not a gatehouse username: "+gatehouse.NameRule)
		return
	case !ok || len(pw) < gatehouse.MinPasswordLength || len(pw) > gatehouse.MaxSecretLength || !printableASCII(pw):
		c.drop(o.node, path, "basic-auth credential", fmt.Sprintf("gatehouse passwords are %d to %d printable ASCII characters; set a new password", gatehouse.MinPasswordLength, gatehouse.MaxSecretLength))
		return
	}
	if !c.unique("basic:"+user, o, path, "basic-auth credential", "its username") {
		return
	}
	cr := c.credential(o, path, owner, gatehouse.CredentialBasicAuth, "basic")
	cr.Username = user
	c.passwords = append(c.passwords, password{cr, pw})
	owner.gh.Credentials = append(owner.gh.Credentials, cr)
}

// unique records a credential's unique key, or reports that an earlier
// credential holds it (Kong refuses that too; gatehouse could not tell
// the two apart).
func (c *conv) unique(key string, o *obj, path, what, part string) bool {
	if first, dup := c.seen[key]; dup {
		c.drop(o.node, path, what, part+" repeats that of "+first)
		return false
	}
	c.seen[key] = path
	return true
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func (c *conv) jwtSecret(o *obj, path string, owner *consumer) {
	key, _ := c.str(o, "key")
	alg := "HS256"
	if s, ok := c.str(o, "algorithm"); ok {
		alg = s
	}
	j := &jwtSecret{consumer: owner, key: key, alg: alg, node: o.node, path: path}
	switch alg {
	case "HS256":
		s, ok := c.str(o, "secret")
		if !ok || s == "" {
			c.drop(o.node, path, "jwt secret", "has no secret: Kong generates one, which this file does not know")
			return
		}
		j.secret = s
	case "RS256", "ES256":
		pk, _ := c.str(o, "rsa_public_key")
		k := gatehouse.JWTKey{Alg: alg, PublicKey: pk}
		if _, err := k.ParsePublicKey(); err != nil {
			c.drop(o.node, path, "jwt secret", "its rsa_public_key "+err.Error())
			return
		}
		j.publicKey = pk
	default:
		c.drop(o.node, path, "jwt secret", fmt.Sprintf("has algorithm %s; gatehouse verifies %s", alg, strings.Join(gatehouse.JWTAlgorithms, ", ")))
		return
	}
	if key == "" {
		c.drop(o.node, path, "jwt secret", "has no key: Kong generates one, and tokens must carry it in iss")
		return
	}
	owner.jwt = append(owner.jwt, j)
}

// password is a basic-auth credential's password waiting to be hashed.
type password struct {
	cr       *config.Credential
	password string
}

// hashPasswords hashes the basic-auth passwords on every core: each
// takes PBKDF2's deliberate 20 ms or so, and a Kong file may hold
// thousands.
func (c *conv) hashPasswords() {
	jobs := make(chan password)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(c.passwords)) {
		wg.Go(func() {
			for j := range jobs {
				j.cr.PasswordHash = string(gatehouse.HashPassword(j.password))
			}
		})
	}
	for _, j := range c.passwords {
		jobs <- j
	}
	close(jobs)
	wg.Wait()
}

// finishConsumers gives each consumer its id and adds it to the document.
//
// Kong's jwt plugin finds a token's credential by the token's iss claim
// (key_claim_name), which holds the credential's key; gatehouse finds the
// consumer by the claim's value, its id or name. So a consumer's id is
// its first jwt secret's key when that is a valid id, and tokens Kong
// accepted name it as before. A consumer's further jwt secrets (or one
// whose key cannot be an id) would name no consumer, and are left out.
func (c *conv) finishConsumers() {
	c.hashPasswords()
	for _, cs := range c.consumers {
		var keep []*jwtSecret
		for _, j := range cs.jwt {
			if len(keep) == 0 && gatehouse.ValidID(j.key) && !c.ids[gatehouse.KindConsumer][j.key] {
				cs.gh.ID = c.newID(gatehouse.KindConsumer, j.key)
				keep = append(keep, j)
				continue
			}
			why := "its key cannot be a gatehouse consumer id (" + gatehouse.IDRule + "), so tokens naming it in iss would name no consumer"
			if len(keep) > 0 {
				why = "the consumer's id is its first jwt secret's key, " + strconv.Quote(keep[0].key) + "; tokens naming this one in iss would name no consumer"
			}
			c.drop(j.node, j.path, "jwt secret "+strconv.Quote(j.key), why)
		}
		cs.jwt = keep
		c.jwtSecrets = append(c.jwtSecrets, keep...)
		if cs.gh.ID == "" {
			cs.gh.ID = c.newID(gatehouse.KindConsumer, cs.kongID, cs.gh.Name)
		}
		c.doc.Consumers = append(c.doc.Consumers, cs.gh)
	}
}
