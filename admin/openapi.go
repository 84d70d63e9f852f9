package admin

import (
	_ "embed"
	"encoding/json"
	"net/http"
)

// openAPIDocument describes this API. The tests keep it honest
// (openapi_test.go): every status the tests see a path answer is listed,
// every listed path exists, and every operation's example request succeeds
// on a fresh server, in document order. scripts/test.sh lints it with
// Redocly and Spectral.
//
//go:embed openapi.json
var openAPIDocument []byte

func serveOpenAPI(h *Handler, r *request) (*result, error) {
	return &result{status: http.StatusOK, body: json.RawMessage(openAPIDocument)}, nil
}
