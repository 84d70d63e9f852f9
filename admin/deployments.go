package admin

import (
	"context"
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/strictjson"
)

// Deployments creates deployments; package deploy's Deployer is the one.
type Deployments interface {
	Create(ctx context.Context, dep *gatehouse.Deployment) error
}

// createDeployment answers 202: the deployment is recorded, pending, and
// applied in the background; its Location reports how it went.
func createDeployment(h *Handler, r *request) (*result, error) {
	body, err := h.readBody(r)
	if err != nil {
		return nil, err
	}
	dep := gatehouse.NewDeployment()
	if errs := strictjson.Decode(body, dep); len(errs) > 0 {
		return nil, invalid(errs)
	}
	if err := h.validate(r, &kindSpec{kind: gatehouse.KindDeployment}, dep); err != nil {
		return nil, err
	}
	if h.opts.Deployments == nil {
		return nil, gatehouse.Errorf(gatehouse.EUNAVAILABLE, "This node does not deploy configuration.")
	}
	if err := h.opts.Deployments.Create(r.Context(), dep); err != nil {
		return nil, err
	}
	return &result{status: http.StatusAccepted, body: dep, version: dep.Version, modified: dep.UpdatedAt,
		location: Prefix + "/deployments/" + dep.ID, retryAfter: 1}, nil
}
