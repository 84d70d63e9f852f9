package admin

import (
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// authenticate finds the admin token a request presents as
// "Authorization: Bearer <token>". The store is searched by the secret's
// hash, and the hash compared again in constant time, so neither the lookup
// nor the comparison leaks the secret through timing.
func (h *Handler) authenticate(r *http.Request, w http.ResponseWriter) (*gatehouse.Token, error) {
	scheme, secret, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	secret = strings.TrimSpace(secret)
	if !strings.EqualFold(scheme, "Bearer") || secret == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
		return nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "An admin token is required: Authorization: Bearer <token>.")
	}
	unknown := func(why string) error {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse", error="invalid_token"`)
		return gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "%s", why)
	}
	hash := gatehouse.HashToken(secret)
	rec, err := h.store.Lookup(r.Context(), gatehouse.KindToken, gatehouse.TokenLookup(hash))
	if err != nil {
		if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
			return nil, unknown("The admin token is not valid, or has been revoked.")
		}
		return nil, err
	}
	if !gatehouse.TokenMatches(secret, rec.Secret) {
		return nil, unknown("The admin token is not valid, or has been revoked.")
	}
	tok := gatehouse.NewToken()
	if err := gatehouse.Decode(rec, tok); err != nil {
		return nil, err
	}
	if tok.Expired(h.opts.Now()) {
		return nil, unknown("The admin token has expired.")
	}
	return tok, nil
}

// authorize decides whether a valid token may make this request: read-only
// tokens only read, and a token scoped to a consumer reaches only that
// consumer and its credentials.
func authorize(r *request) error {
	tok := r.token
	if tok.Role == gatehouse.RoleReadOnly {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			return gatehouse.Errorf(gatehouse.EFORBIDDEN, "This token is read-only; %s needs an admin token.", r.Method)
		}
	}
	if tok.ConsumerID != "" && !r.ep.anyToken {
		kind := r.ep.kind
		ownConsumer := (kind == gatehouse.KindConsumer && len(r.params) == 1 && r.params[0] == tok.ConsumerID) ||
			(kind == gatehouse.KindCredential && r.params[0] == tok.ConsumerID)
		if !ownConsumer {
			return gatehouse.Errorf(gatehouse.EFORBIDDEN, "This token is limited to consumer %q and its credentials.", tok.ConsumerID)
		}
	}
	return nil
}
