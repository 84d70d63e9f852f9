package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/gatehouse/gatehouse"
)

// Consumers is a revision's consumers and their credentials, indexed as
// requests present them. Verifying a credential never touches the store.
type Consumers struct {
	byID   map[string]*Consumer
	byName map[string]*Consumer
	// keys maps an API key's SHA-256 (hex) to its consumer.
	keys map[string]*Consumer
	// basic maps a basic-auth username to its password hash and consumer.
	basic map[string]basicCredential

	// verified caches basic-auth pairs that matched: PBKDF2 costs tens of
	// milliseconds by design, too much to pay on every request. Keyed by
	// SHA-256 of username and password, so that no password is held.
	mu       sync.Mutex
	verified map[[sha256.Size]byte]*Consumer
}

type basicCredential struct {
	hash     []byte
	consumer *Consumer
}

// unknownUserHash is verified against for usernames nobody has.
var unknownUserHash = gatehouse.HashPassword(gatehouse.NewSecret(""))

// maxVerified bounds the cache of verified basic-auth pairs; past it, the
// cache starts afresh.
const maxVerified = 10_000

func newConsumers(rev *gatehouse.Revision) (*Consumers, error) {
	cs := &Consumers{byID: map[string]*Consumer{}, byName: map[string]*Consumer{}, keys: map[string]*Consumer{},
		basic: map[string]basicCredential{}, verified: map[[sha256.Size]byte]*Consumer{}}
	for _, c := range rev.Consumers {
		pc := &Consumer{ID: c.ID, Name: c.Name, Groups: c.Groups}
		cs.byID[c.ID] = pc
		cs.byName[c.Name] = pc
	}
	for _, cred := range rev.Credentials {
		owner := cs.byID[cred.ConsumerID]
		if owner == nil {
			return nil, fmt.Errorf("credential %q belongs to consumer %q, which is not in the revision", cred.ID, cred.ConsumerID)
		}
		switch cred.Type {
		case gatehouse.CredentialKeyAuth:
			cs.keys[cred.Hash] = owner
		case gatehouse.CredentialBasicAuth:
			cs.basic[cred.Username] = basicCredential{hash: []byte(cred.Hash), consumer: owner}
		default:
			return nil, fmt.Errorf("credential %q is of type %q, which this gatehouse does not know", cred.ID, cred.Type)
		}
	}
	return cs, nil
}

// Len is the number of consumers.
func (cs *Consumers) Len() int { return len(cs.byID) }

// ByKey returns the consumer whose API key is key, or nil.
func (cs *Consumers) ByKey(key string) *Consumer {
	if key == "" {
		return nil
	}
	// gatehouse.HashToken, without its two allocations: this runs on
	// every request of a key-auth route.
	sum := sha256.Sum256([]byte(key))
	var hexed [2 * sha256.Size]byte
	hex.Encode(hexed[:], sum[:])
	return cs.keys[string(hexed[:])]
}

// ByIDOrName returns the consumer with that id, else that name, or nil.
func (cs *Consumers) ByIDOrName(s string) *Consumer {
	if c := cs.byID[s]; c != nil {
		return c
	}
	return cs.byName[s]
}

// ByBasic returns the consumer whose basic-auth credential is username
// and password, or nil.
func (cs *Consumers) ByBasic(username, password string) *Consumer {
	cred, ok := cs.basic[username]
	if !ok {
		// As slow as a wrong password, so that timing does not tell
		// which usernames exist.
		gatehouse.PasswordMatches(password, unknownUserHash)
		return nil
	}
	sum := sha256.Sum256([]byte(username + "\x00" + password))
	cs.mu.Lock()
	c := cs.verified[sum]
	cs.mu.Unlock()
	if c != nil {
		return c
	}
	if !gatehouse.PasswordMatches(password, cred.hash) {
		return nil
	}
	cs.mu.Lock()
	if len(cs.verified) >= maxVerified {
		clear(cs.verified)
	}
	cs.verified[sum] = cred.consumer
	cs.mu.Unlock()
	return cred.consumer
}
