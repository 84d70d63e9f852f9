// Package proxy is gatehouse's data plane. Until routing lands it answers
// every request with the contract's problem for "no route matches", so the
// listener, its limits and its error bodies are already those of the
// finished proxy.
package proxy

import (
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/problem"
)

// Handler is the data plane's HTTP handler.
type Handler struct{}

// New returns the data plane handler.
func New() *Handler { return &Handler{} }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !gatehouse.KnownMethod(r.Method) {
		problem.WriteNegotiated(w, r, gatehouse.Errorf(gatehouse.ENOTIMPLEMENTED, "The request method is not implemented."))
		return
	}
	problem.WriteNegotiated(w, r, gatehouse.Errorf(gatehouse.ENOTFOUND, "No route matches this request."))
}
