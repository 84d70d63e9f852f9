package admin

import (
	_ "embed"
	"encoding/json"
	"net/http"
)

// openAPIDocument describes this API. TestOpenAPIDocumentIsTrue keeps it
// honest: every status the tests see a path answer is listed, and every
// listed path exists.
//
//go:embed openapi.json
var openAPIDocument []byte

func serveOpenAPI(h *Handler, r *request) (*result, error) {
	return &result{status: http.StatusOK, body: json.RawMessage(openAPIDocument)}, nil
}
