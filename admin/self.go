package admin

import "net/http"

// TokenPath answers which token a request presents: its id, name, role,
// consumer scope and expiry, never its secret. A client (the console)
// learns from it what it may do before it tries, so that a read-only
// token is shown no edit controls; the API refuses its writes anyway.
const TokenPath = Prefix + "/token"

// The endpoint is not a resource collection: it lives beside them, as
// the conformance report does.
func init() {
	endpoints = append(endpoints, &endpoint{pattern: TokenPath, untagged: true, anyToken: true,
		methods: map[string]handlerFunc{http.MethodGet: presentedToken, http.MethodHead: presentedToken}})
}

func presentedToken(h *Handler, r *request) (*result, error) {
	tok := *r.token
	tok.Token = "" // a stored token holds no secret; this makes sure of it
	return &result{status: http.StatusOK, body: &tok}, nil
}
