package policy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// jwksMinInterval is the least time between two fetches of one JWKS:
	// tokens naming unknown kids, or a JWKS server that is down, cost at
	// most one fetch per interval.
	jwksMinInterval = 5 * time.Second
	// jwksFetchTimeout bounds one fetch whatever the HTTP client allows.
	jwksFetchTimeout = 10 * time.Second
	// jwksMaxBytes bounds a JWKS document.
	jwksMaxBytes = 1 << 20
)

// defaultJWKSClient fetches JWKS documents when Env.HTTPClient is nil.
var defaultJWKSClient = &http.Client{Timeout: jwksFetchTimeout}

// keySet is one fetched JWKS.
type keySet struct {
	keys    []*jwtKey
	fetched time.Time
}

func (s *keySet) hasKid(kid string) bool {
	for _, k := range s.keys {
		if k.kid == kid {
			return true
		}
	}
	return false
}

// jwks is the key set at a URL, fetched in the background: requests read
// the last good set without locking; a set past its time is still used
// while a new one is fetched, and kept if the fetch fails. Only a request
// that finds no set at all, or names a kid the set lacks, waits for a
// fetch, and never longer than one fetch's timeout or its own context.
type jwks struct {
	url         string
	client      *http.Client
	ctx         context.Context
	log         *slog.Logger
	now         func() time.Time
	ttl         time.Duration
	minInterval time.Duration

	set atomic.Pointer[keySet]

	mu sync.Mutex
	// inflight is closed when the running fetch ends; nil if none runs.
	inflight    chan struct{}
	lastAttempt time.Time
}

func newJWKS(env *Env, url string, ttl time.Duration) *jwks {
	client := env.HTTPClient
	if client == nil {
		client = defaultJWKSClient
	}
	return &jwks{url: url, client: client, ctx: env.Context, log: env.Log, now: env.Now, ttl: ttl,
		minInterval: jwksMinInterval}
}

// current is the last set fetched, nil if none was.
func (j *jwks) current() *keySet { return j.set.Load() }

// prefetch starts the first fetch, so that the first request finds keys.
func (j *jwks) prefetch() {
	if j.current() == nil {
		j.start()
	}
}

// start begins a fetch unless one is running (whose channel it returns)
// or the last began less than minInterval ago (nil).
func (j *jwks) start() chan struct{} {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.inflight != nil {
		return j.inflight
	}
	now := j.now()
	if !j.lastAttempt.IsZero() && now.Sub(j.lastAttempt) < j.minInterval {
		return nil
	}
	j.lastAttempt = now
	done := make(chan struct{})
	j.inflight = done
	go j.run(done)
	return done
}

func (j *jwks) run(done chan struct{}) {
	set, err := j.fetch()
	if err != nil {
		j.log.Warn("fetching a JWKS failed; the keys fetched before stay in use", "url", j.url, "error", err)
	} else {
		j.set.Store(set)
	}
	j.mu.Lock()
	j.inflight = nil
	j.mu.Unlock()
	close(done)
}

// keys returns the set to verify with, waiting for a fetch only if none
// has succeeded yet; errKeysUnavailable if that fetch fails too.
func (j *jwks) keys(ctx context.Context) (*keySet, error) {
	if set := j.current(); set != nil {
		if j.now().Sub(set.fetched) >= j.ttl {
			j.start()
		}
		return set, nil
	}
	wait(ctx, j.start())
	if set := j.current(); set != nil {
		return set, nil
	}
	return nil, errKeysUnavailable
}

// refetch fetches the set again, for a token naming a kid it lacks, unless
// the last fetch is too recent, and returns the newest set.
func (j *jwks) refetch(ctx context.Context) *keySet {
	wait(ctx, j.start())
	return j.current()
}

// wait waits for done (nil: nothing to wait for) or the end of ctx.
func wait(ctx context.Context, done chan struct{}) {
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func (j *jwks) fetch() (*keySet, error) {
	ctx, cancel := context.WithTimeout(j.ctx, jwksFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > jwksMaxBytes {
		return nil, fmt.Errorf("document over %d bytes", jwksMaxBytes)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return nil, err
	}
	return &keySet{keys: keys, fetched: j.now()}, nil
}

// jwk is one JSON Web Key (RFC 7517), the members gatehouse reads.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS returns the signature keys of a JWKS that gatehouse can
// verify with: RSA keys of 2048 bits or more for RS256, P-256 keys for
// ES256. Other keys are skipped, symmetric ones always: a key fetched
// over the network is never an HMAC secret.
func parseJWKS(body []byte) ([]*jwtKey, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, errors.New("not a JWKS document")
	}
	if doc.Keys == nil {
		return nil, errors.New("not a JWKS document: no keys member")
	}
	var out []*jwtKey
	for _, k := range doc.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		switch {
		case k.Kty == "RSA" && (k.Alg == "" || k.Alg == "RS256"):
			if pub := rsaJWK(k); pub != nil {
				out = append(out, &jwtKey{kid: k.Kid, alg: "RS256", rsa: pub})
			}
		case k.Kty == "EC" && k.Crv == "P-256" && (k.Alg == "" || k.Alg == "ES256"):
			if pub := ecJWK(k); pub != nil {
				out = append(out, &jwtKey{kid: k.Kid, alg: "ES256", ec: pub})
			}
		}
	}
	return out, nil
}

// b64Lenient decodes a JWK member, tolerating the padding some issuers add.
func b64Lenient(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

func rsaJWK(k jwk) *rsa.PublicKey {
	n, err1 := b64Lenient(k.N)
	e, err2 := b64Lenient(k.E)
	if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 {
		return nil
	}
	exp := 0
	for _, b := range e {
		exp = exp<<8 | int(b)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}
	if pub.N.BitLen() < 2048 || exp < 3 || exp%2 == 0 {
		return nil
	}
	return pub
}

func ecJWK(k jwk) *ecdsa.PublicKey {
	x, err1 := b64Lenient(k.X)
	y, err2 := b64Lenient(k.Y)
	if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
		return nil
	}
	// ParseUncompressedPublicKey refuses a point not on the curve.
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		return nil
	}
	return pub
}
