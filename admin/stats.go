package admin

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/gatehouse/gatehouse"
)

// Stats is the data plane's live figures (proxy.Handler).
type Stats interface {
	Stats() gatehouse.NodeStats
}

// The live figures are read-only and live beside the resources, as the
// conformance report does.
func init() {
	q := map[string]queryParam{"route_id": textFilter}
	endpoints = append(endpoints, &endpoint{pattern: Prefix + "/stats", untagged: true,
		methods: map[string]handlerFunc{http.MethodGet: getStats, http.MethodHead: getStats},
		query:   map[string]map[string]queryParam{http.MethodGet: q, http.MethodHead: q}},
		// A service's targets' health, as Kong's /upstreams/{id}/health:
		// live, so without an ETag, like the figures it is read from.
		&endpoint{pattern: Prefix + "/services/{id}/health", paramNames: []string{"id"}, kind: gatehouse.KindService,
			owner: services, untagged: true,
			methods: map[string]handlerFunc{http.MethodGet: getServiceHealth, http.MethodHead: getServiceHealth}})
}

// getStats answers the live figures of the cluster's data planes
// (Handler.clusterStats); serve has checked the query.
func getStats(h *Handler, r *request) (*result, error) {
	cs, err := h.clusterStats(r.Context(), r.query.Get("route_id"))
	if err != nil {
		return nil, err
	}
	return &result{status: http.StatusOK, body: cs}, nil
}

// getServiceHealth answers a service's targets' health as every live node
// serving traffic sees it (404 or 410 for a service that does not exist);
// a service no node serves yet is answered, its state unknown.
func getServiceHealth(h *Handler, r *request) (*result, error) {
	res, err := r.ep.owner.load(h, r)
	if err != nil {
		return nil, err
	}
	nodes, err := h.nodeFigures(r.Context())
	if err != nil {
		return nil, err
	}
	return &result{status: http.StatusOK, body: gatehouse.SumHealth(nodes, res.(*gatehouse.Service).ID)[0]}, nil
}

// clusterStats sums the figures of every node that serves traffic and is
// live (nodeFigures).
func (h *Handler) clusterStats(ctx context.Context, routeID string) (*gatehouse.ClusterStats, error) {
	nodes, err := h.nodeFigures(ctx)
	if err != nil {
		return nil, err
	}
	return gatehouse.SumStats(h.opts.Now(), nodes, routeID), nil
}

// nodeFigures reads the figures of every node that serves traffic: this
// node's own, read from its data plane now (so that a node of role all is
// never an interval behind), and those the others published to the store
// (their latest gatehouse.NodeStats, bounded in size, written at most once
// an interval). A node that is down is listed without figures, as is one
// that has published none or whose figures do not decode, each with why
// (NodeShare.Excluded).
func (h *Handler) nodeFigures(ctx context.Context) ([]gatehouse.NodeFigures, error) {
	recs, err := h.store.Snapshot(ctx, gatehouse.KindNode, gatehouse.KindStats)
	if err != nil {
		return nil, err
	}
	published := map[string][]byte{}
	for _, rec := range recs[gatehouse.KindStats] {
		published[rec.ID] = rec.Body
	}
	own := h.opts.Stats
	var nodes []gatehouse.NodeFigures
	for _, rec := range recs[gatehouse.KindNode] {
		n := gatehouse.NewNode()
		if err := gatehouse.Decode(rec, n); err != nil {
			return nil, err
		}
		if !n.ServesTraffic() {
			continue
		}
		h.judge(n)
		nf := gatehouse.NodeFigures{Node: gatehouse.NodeShare{Node: n.ID, State: n.State}}
		body, ok := published[n.ID] // an empty record is unreadable, not none
		switch {
		case own != nil && n.ID == h.opts.NodeName:
			continue // this node's data plane, read below, is newer
		case n.State != gatehouse.NodeLive:
			nf.Node.Excluded = gatehouse.ExcludedDown
		case !ok:
			nf.Node.Excluded = gatehouse.ExcludedNone
		default:
			s := &gatehouse.NodeStats{}
			if err := json.Unmarshal(body, s); err != nil {
				// One node's bad snapshot must not cost everyone the
				// others' figures: it is left out, the answer says so,
				// and the log (the process's, as problem.Write's) says
				// why, at each read until the node publishes anew.
				slog.WarnContext(ctx, "a node's published figures do not decode: left out of the cluster's", "node", n.ID, "error", err)
				nf.Node.Excluded = gatehouse.ExcludedUnreadable
				break
			}
			nf.Stats = s
		}
		nodes = append(nodes, nf)
	}
	if own != nil {
		// Registered or not (yet), this node is live: it is answering.
		s := own.Stats()
		nodes = append(nodes, gatehouse.NodeFigures{Node: gatehouse.NodeShare{Node: h.opts.NodeName, State: gatehouse.NodeLive}, Stats: &s})
	}
	return nodes, nil
}

// judge sets n's State as the node list shows it.
func (h *Handler) judge(n *gatehouse.Node) {
	if h.opts.Nodes != nil {
		h.opts.Nodes.Judge(n)
		return
	}
	n.State = gatehouse.NodeDown
	if n.Live(h.opts.Now()) {
		n.State = gatehouse.NodeLive
	}
}
