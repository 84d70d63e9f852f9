package gatehouse

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Consumer is a client of the data plane, identified by its credentials.
type Consumer struct {
	Meta
	Tagged
	Name string `json:"name"`
	// Groups are the names ACL policies allow or deny.
	Groups []string `json:"groups"`
}

const MaxGroups = 64

func NewConsumer() *Consumer { return &Consumer{Groups: []string{}} }

func (c *Consumer) Kind() Kind  { return KindConsumer }
func (c *Consumer) Base() *Meta { return &c.Meta }

func (c *Consumer) Index() Index {
	return Index{Name: c.Name, Unique: []string{"name:" + c.Name}}
}

func (c *Consumer) Check() (invalid, unprocessable []FieldError) {
	var bad fields
	checkMeta(&c.Meta, &bad)
	checkTags("tags", c.Tags, &bad)
	checkName(c.Name, true, &bad)
	checkGroups("groups", c.Groups, &bad)
	return bad, nil
}

// checkGroups checks a list of group names, as consumers carry them and
// ACL policies name them.
func checkGroups(field string, groups []string, f *fields) {
	checkList(field, groups, MaxGroups, strings.ToLower, f)
	for i, g := range groups {
		if g != "" && !namePattern.MatchString(g) {
			f.add(fmt.Sprintf("%s[%d]", field, i), nameRule)
		}
	}
}

// Credential types.
const (
	CredentialKeyAuth   = "key-auth"
	CredentialBasicAuth = "basic-auth"
)

// Credential lets a consumer authenticate on the data plane: an API key, or
// a basic-auth username and password. The secret is shown once, in the
// response to its creation, and stored only as a hash.
type Credential struct {
	Meta
	Tagged
	ConsumerID string `json:"consumer_id"`
	Type       string `json:"type"`
	// Key is the API key of a key-auth credential. Clients may supply one
	// (at least 16 characters); otherwise one is generated.
	Key string `json:"key,omitempty"`
	// Username and Password are a basic-auth credential's pair.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`

	keyHash string
}

const (
	MinKeyLength      = 16
	MaxSecretLength   = 512
	MinPasswordLength = 8
)

func NewCredential() *Credential { return &Credential{} }

func (c *Credential) Kind() Kind  { return KindCredential }
func (c *Credential) Base() *Meta { return &c.Meta }

// Index makes API keys and basic-auth usernames unique, so that the data
// plane can find a credential by what a request presents.
func (c *Credential) Index() Index {
	ix := Index{Parent: &Ref{KindConsumer, c.ConsumerID}}
	switch c.Type {
	case CredentialKeyAuth:
		ix.Unique = []string{KeyAuthLookup(c.keyHash)}
	case CredentialBasicAuth:
		ix.Name = c.Username
		ix.Unique = []string{BasicAuthLookup(c.Username)}
	}
	return ix
}

// KeyAuthLookup is the unique key under which a key-auth credential is
// found: the key's SHA-256 (HashToken), so the key itself is never stored.
func KeyAuthLookup(keyHash string) string { return "key:" + keyHash }

// BasicAuthLookup is the unique key of a basic-auth credential.
func BasicAuthLookup(username string) string { return "basic:" + username }

func (c *Credential) Check() (invalid, unprocessable []FieldError) {
	var bad fields
	checkMeta(&c.Meta, &bad)
	checkTags("tags", c.Tags, &bad)
	switch c.Type {
	case "":
		bad.add("type", "is required: %s or %s", CredentialKeyAuth, CredentialBasicAuth)
	case CredentialKeyAuth:
		if c.Key != "" && (len(c.Key) < MinKeyLength || len(c.Key) > MaxSecretLength || !printable(c.Key)) {
			bad.add("key", "must be %d to %d printable ASCII characters", MinKeyLength, MaxSecretLength)
		}
		if c.Username != "" {
			bad.add("username", "belongs to basic-auth credentials only")
		}
		if c.Password != "" {
			bad.add("password", "belongs to basic-auth credentials only")
		}
	case CredentialBasicAuth:
		if c.Username == "" {
			bad.add("username", "is required")
		} else if !namePattern.MatchString(c.Username) {
			bad.add("username", nameRule)
		}
		if len(c.Password) < MinPasswordLength || len(c.Password) > MaxSecretLength || !printable(c.Password) {
			bad.add("password", "must be %d to %d printable ASCII characters", MinPasswordLength, MaxSecretLength)
		}
		if c.Key != "" {
			bad.add("key", "belongs to key-auth credentials only")
		}
	default:
		bad.add("type", "must be %s or %s", CredentialKeyAuth, CredentialBasicAuth)
	}
	return bad, nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Seal generates a key if none was given and returns the hash to store. The
// plaintext stays in c only for the creation response.
func (c *Credential) Seal() []byte {
	switch c.Type {
	case CredentialKeyAuth:
		if c.Key == "" {
			c.Key = NewSecret("ghk_")
		}
		c.keyHash = HashToken(c.Key)
		return []byte(c.keyHash)
	case CredentialBasicAuth:
		return HashPassword(c.Password)
	}
	return nil
}

// Redact clears the secrets and returns a function that restores them: the
// stored body never holds them, the creation response does.
func (c *Credential) Redact() func() {
	key, password := c.Key, c.Password
	c.Key, c.Password = "", ""
	return func() { c.Key, c.Password = key, password }
}

// NewSecret returns prefix followed by 256 random bits in base64url.
func NewSecret(prefix string) string {
	var b [32]byte
	rand.Read(b[:])
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// HashToken hashes a high-entropy secret (admin token, API key). One round
// of SHA-256 suffices for 256 random bits and lets a lookup find it by hash.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// TokenMatches compares a presented secret to a stored hash in constant time.
func TokenMatches(secret string, stored []byte) bool {
	return subtle.ConstantTimeCompare([]byte(HashToken(secret)), stored) == 1
}

// The bounds of PBKDF2-SHA256's work factor for basic-auth passwords,
// which people choose and so need a slow hash. A stored hash outside them
// is refused unread: below, it protects too little; above, one request
// naming its username would cost the data plane seconds of CPU (a hash
// may come from a file, as password_hash, not only from HashPassword).
const (
	MinPasswordIterations = 10_000
	MaxPasswordIterations = 1_000_000
	// passwordIterations is HashPassword's.
	passwordIterations = 100_000
)

// CheckPasswordIterations says what is wrong with n as a password hash's
// work factor, "" if nothing.
func CheckPasswordIterations(n int) string {
	if n < MinPasswordIterations || n > MaxPasswordIterations {
		return fmt.Sprintf("must have %d to %d PBKDF2 iterations, not %d", MinPasswordIterations, MaxPasswordIterations, n)
	}
	return ""
}

// HashPassword returns "pbkdf2-sha256$iterations$salt$hash".
func HashPassword(password string) []byte {
	var salt [16]byte
	rand.Read(salt[:])
	key, _ := pbkdf2.Key(sha256.New, password, salt[:], passwordIterations, 32)
	return fmt.Appendf(nil, "pbkdf2-sha256$%d$%s$%s", passwordIterations,
		base64.RawStdEncoding.EncodeToString(salt[:]), base64.RawStdEncoding.EncodeToString(key))
}

// PasswordMatches checks password against a HashPassword result in
// constant time. A hash whose iterations CheckPasswordIterations refuses
// matches nothing, and costs nothing.
func PasswordMatches(password string, stored []byte) bool {
	parts := strings.Split(string(stored), "$")
	if len(parts) != 4 || parts[0] != "pbkdf2-sha256" {
		return false
	}
	iter, err := strconv.Atoi(parts[1])
	if err != nil || CheckPasswordIterations(iter) != "" {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[2])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[3])
	if err1 != nil || err2 != nil {
		return false
	}
	got, err := pbkdf2.Key(sha256.New, password, salt, iter, len(want))
	return err == nil && subtle.ConstantTimeCompare(got, want) == 1
}
