package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/config"
)

// selectQuery is the query of a configuration request: select_tags=a,b
// if any tags are selected, dry_run=true for a dry run.
func selectQuery(selectTags []string, dryRun bool) url.Values {
	q := url.Values{}
	if len(selectTags) > 0 {
		q.Set("select_tags", strings.Join(selectTags, ","))
	}
	if dryRun {
		q.Set("dry_run", "true")
	}
	return q
}

// DumpConfig reads the draft, the part with every selected tag, as a
// document in YAML (yaml) or JSON, and the draft's ETag.
func (c *Client) DumpConfig(ctx context.Context, selectTags []string, yaml bool) (body []byte, etag string, err error) {
	accept := JSON
	if yaml {
		accept = YAML
	}
	resp, err := c.Do(ctx, Request{Method: http.MethodGet, Path: Prefix + "/config",
		Query: selectQuery(selectTags, false), Accept: accept})
	if err != nil {
		return nil, "", err
	}
	return resp.Body, resp.ETag(), nil
}

// ConfigOptions say how a document is sent to the configuration endpoint.
type ConfigOptions struct {
	// Sync also deletes what the document (within the selection) lacks
	// (PUT); without it only creates and updates are made (POST).
	Sync       bool
	SelectTags []string
	DryRun     bool
	// IfMatch is the draft's ETag the change must apply to ("" for any).
	IfMatch string
}

// ApplyConfig sends a document, JSON, to the configuration endpoint and
// returns the change set it made or, for a dry run, would make (its Draft
// and NewDraft are the draft's ETags before and after).
func (c *Client) ApplyConfig(ctx context.Context, doc []byte, opts ConfigOptions) (*config.ChangeSet, error) {
	method := http.MethodPost
	if opts.Sync {
		method = http.MethodPut
	}
	var cs config.ChangeSet
	if _, err := c.DoJSON(ctx, Request{Method: method, Path: Prefix + "/config", Query: selectQuery(opts.SelectTags, opts.DryRun),
		Body: doc, ContentType: JSON, IfMatch: opts.IfMatch}, nil, &cs); err != nil {
		return nil, err
	}
	return &cs, nil
}

// CreateDeployment records a deployment (a deploy, a rollback or an
// undeploy); the server applies it in the background.
func (c *Client) CreateDeployment(ctx context.Context, dep *gatehouse.Deployment) (*gatehouse.Deployment, error) {
	out := &gatehouse.Deployment{}
	if _, err := c.DoJSON(ctx, Request{Method: http.MethodPost, Path: Prefix + "/deployments"}, dep, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Deployment reads one deployment and its progress.
func (c *Client) Deployment(ctx context.Context, id string) (*gatehouse.Deployment, error) {
	out := &gatehouse.Deployment{}
	if _, err := c.DoJSON(ctx, Request{Method: http.MethodGet, Path: Prefix + "/deployments/" + url.PathEscape(id)}, nil, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Deployments lists every deployment, in creation order (the order they
// are applied in).
func (c *Client) Deployments(ctx context.Context) ([]*gatehouse.Deployment, error) {
	return listAll[*gatehouse.Deployment](ctx, c, Prefix+"/deployments")
}

// RevisionDiff reads what changes from revision from (0: the empty
// configuration) to revision to, secrets never shown. A revision that
// does not exist is a *Problem with status 404.
func (c *Client) RevisionDiff(ctx context.Context, from, to int64) (*config.RevisionDiff, error) {
	out := &config.RevisionDiff{}
	if _, err := c.DoJSON(ctx, Request{Method: http.MethodGet, Path: Prefix + "/revisions/" + gatehouse.RevisionID(to),
		Query: url.Values{"diff_from": {gatehouse.RevisionID(from)}}}, nil, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Nodes lists every node sharing the store, in registration order.
func (c *Client) Nodes(ctx context.Context) ([]*gatehouse.Node, error) {
	return listAll[*gatehouse.Node](ctx, c, Prefix+"/nodes")
}

// Stats reads the live figures of the cluster's data planes; routeID, if
// set, keeps only that route's in Routes.
func (c *Client) Stats(ctx context.Context, routeID string) (*gatehouse.ClusterStats, error) {
	var q url.Values
	if routeID != "" {
		q = url.Values{"route_id": {routeID}}
	}
	out := &gatehouse.ClusterStats{}
	if _, err := c.DoJSON(ctx, Request{Method: http.MethodGet, Path: Prefix + "/stats", Query: q}, nil, out); err != nil {
		return nil, err
	}
	return out, nil
}

// listAll reads every page of a listing.
func listAll[T any](ctx context.Context, c *Client, path string) ([]T, error) {
	var all []T
	cursor := ""
	for {
		q := url.Values{"limit": {strconv.Itoa(gatehouse.MaxPageSize)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Data       []T    `json:"data"`
			NextCursor string `json:"next_cursor"`
		}
		if _, err := c.DoJSON(ctx, Request{Method: http.MethodGet, Path: path, Query: q}, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Data...)
		if page.NextCursor == "" {
			return all, nil
		}
		cursor = page.NextCursor
	}
}
