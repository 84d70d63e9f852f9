package admin

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
)

// Conformance is the data plane's record of the response audit's
// findings (audit.Recorder).
type Conformance interface {
	Entries(f audit.Filter) []audit.Entry
	Dropped() int64
}

// The conformance report is read-only and lives beside the resources;
// adding its endpoint here keeps it out of their table.
func init() {
	q := conformanceQuery()
	endpoints = append(endpoints, &endpoint{pattern: Prefix + "/conformance", untagged: true,
		methods: map[string]handlerFunc{http.MethodGet: listConformance, http.MethodHead: listConformance},
		query:   map[string]map[string]queryParam{http.MethodGet: q, http.MethodHead: q}})
}

// finding is one entry of the report.
type finding struct {
	Rule      string         `json:"rule"`
	Severity  audit.Severity `json:"severity"`
	RouteID   string         `json:"route_id"`
	Operation string         `json:"operation"`
	Status    int            `json:"status"`
	Count     int64          `json:"count"`
	FirstSeen time.Time      `json:"first_seen"`
	LastSeen  time.Time      `json:"last_seen"`
	Sample    findingSample  `json:"sample"`
}

type findingSample struct {
	RequestID string `json:"request_id"`
	Method    string `json:"method"`
	Path      string `json:"path"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
}

// conformancePage is the body of GET /conformance.
type conformancePage struct {
	Data []finding `json:"data"`
	// Dropped counts the findings not kept: by this node's recorder at
	// its cap on distinct entries, and by the other nodes' (their
	// published snapshots included).
	Dropped int64 `json:"dropped"`
	// UnreadableNodes are the nodes whose published findings did not
	// decode: theirs are not in the report.
	UnreadableNodes []string `json:"unreadable_nodes,omitempty"`
	NextCursor      string   `json:"next_cursor,omitempty"`
}

func conformanceQuery() map[string]queryParam {
	return pagedQuery(map[string]queryParam{
		"route": textFilter,
		"rule": func(v string) string {
			if audit.SeverityOf(v) == "" {
				return "is not a rule of the response audit"
			}
			return ""
		},
		"severity": func(v string) string {
			switch audit.Severity(v) {
			case audit.Error, audit.Warning, audit.Info:
				return ""
			}
			return "must be one of error, warning, info"
		},
		"status": func(v string) string {
			if n, err := strconv.Atoi(v); err != nil || n < 100 || n > 599 {
				return "must be an integer from 100 to 599"
			}
			return ""
		},
	})
}

// listConformance lists the findings of the cluster's data planes
// (Handler.conformance), ordered by route, operation, status and rule;
// serve has checked the query.
func listConformance(h *Handler, r *request) (*result, error) {
	var f audit.Filter
	limit, offset := gatehouse.DefaultPageSize, 0
	for key, vals := range r.query {
		switch v := vals[0]; key {
		case "route":
			f.RouteID = v
		case "rule":
			f.Rule = v
		case "severity":
			f.Severity = audit.Severity(v)
		case "status":
			f.Status, _ = strconv.Atoi(v)
		case "limit":
			limit, _ = strconv.Atoi(v)
		case "cursor":
			// The cursor is the position of the next entry, counted
			// from 1 (decodeCursor's rule).
			n, _ := decodeCursor(v)
			offset = int(min(n-1, int64(1<<30)))
		}
	}
	page := conformancePage{Data: []finding{}}
	entries, dropped, unreadable, err := h.conformance(r.Context(), f)
	if err != nil {
		return nil, err
	}
	page.Dropped, page.UnreadableNodes = dropped, unreadable
	if offset < len(entries) {
		entries = entries[offset:]
	} else {
		entries = nil
	}
	if len(entries) > limit {
		entries = entries[:limit]
		page.NextCursor = encodeCursor(int64(offset + limit + 1))
	}
	for _, e := range entries {
		page.Data = append(page.Data, finding{Rule: e.Rule, Severity: e.Severity, RouteID: e.RouteID,
			Operation: e.Operation, Status: e.Status, Count: e.Count, FirstSeen: e.FirstSeen.UTC(), LastSeen: e.LastSeen.UTC(),
			Sample: findingSample(e.Sample)})
	}
	return &result{status: http.StatusOK, body: page}, nil
}
