package admin

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/audit"
)

// conformanceAPI is the admin API with a recorder holding the findings
// given.
func conformanceAPI(t *testing.T, findings ...audit.Finding) *testAPI {
	t.Helper()
	rec := audit.NewRecorder(audit.RecorderOptions{MaxEntries: 3})
	for i := range findings {
		rec.Record(&findings[i])
	}
	return newTestAPI(t, func(c *apiConfig) { c.admin.Conformance = rec })
}

type report struct {
	Data            []finding `json:"data"`
	Dropped         int64     `json:"dropped"`
	UnreadableNodes []string  `json:"unreadable_nodes"`
	NextCursor      string    `json:"next_cursor"`
}

func (a *testAPI) report(path string) report {
	a.t.Helper()
	r := a.do("GET", path, "")
	if r.status != http.StatusOK {
		a.t.Fatalf("GET %s: got %d %s; want 200", path, r.status, r.body)
	}
	var rep report
	if err := json.Unmarshal(r.body, &rep); err != nil {
		a.t.Fatal(err)
	}
	return rep
}

func TestConformanceReportListsFindingsFilteredByRouteAndRule(t *testing.T) {
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	api := conformanceAPI(t,
		audit.Finding{Rule: audit.AllowMissing, RouteID: "pets", Status: 405, RequestID: "r1", Method: "DELETE", Path: "/pets/1", Detail: "a 405 response has no Allow", At: at},
		audit.Finding{Rule: audit.AllowMissing, RouteID: "pets", Status: 405, RequestID: "r2", Method: "PUT", Path: "/pets/2", Detail: "a 405 response has no Allow", At: at.Add(time.Minute)},
		audit.Finding{Rule: audit.LocationMissing, RouteID: "pets", Status: 201, RequestID: "r3", At: at},
		audit.Finding{Rule: audit.AllowMissing, RouteID: "users", Status: 405, RequestID: "r4", At: at},
		// Over the cap of 3 entries: dropped and counted.
		audit.Finding{Rule: audit.ErrorNotProblem, RouteID: "users", Status: 500, RequestID: "r5", At: at},
	)
	all := api.report(Prefix + "/conformance")
	if len(all.Data) != 3 || all.Dropped != 1 {
		t.Fatalf("got %d findings, %d dropped; want 3 and 1", len(all.Data), all.Dropped)
	}
	pets := api.report(Prefix + "/conformance?route=pets&rule=allow-missing")
	want := finding{Rule: audit.AllowMissing, Severity: audit.Error, RouteID: "pets", Status: 405, Count: 2,
		FirstSeen: at, LastSeen: at.Add(time.Minute),
		Sample: findingSample{RequestID: "r2", Method: "PUT", Path: "/pets/2", Status: 405, Detail: "a 405 response has no Allow"}}
	if len(pets.Data) != 1 || pets.Data[0] != want {
		t.Fatalf("route=pets&rule=allow-missing: got %+v; want [%+v]", pets.Data, want)
	}
	var routes []string
	for _, f := range api.report(Prefix + "/conformance?rule=allow-missing").Data {
		routes = append(routes, f.RouteID)
	}
	if !slices.Equal(routes, []string{"pets", "users"}) {
		t.Fatalf("rule=allow-missing: routes %v; want pets, users", routes)
	}
	if got := api.report(Prefix + "/conformance?severity=warning").Data; len(got) != 1 || got[0].Rule != audit.LocationMissing {
		t.Fatalf("severity=warning: got %+v", got)
	}
}

func TestConformanceReportPages(t *testing.T) {
	at := time.Now()
	api := conformanceAPI(t,
		audit.Finding{Rule: audit.AllowMissing, RouteID: "a", Status: 405, At: at},
		audit.Finding{Rule: audit.AllowMissing, RouteID: "b", Status: 405, At: at},
		audit.Finding{Rule: audit.AllowMissing, RouteID: "c", Status: 405, At: at},
	)
	var routes []string
	path := Prefix + "/conformance?limit=2"
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("the cursor does not end")
		}
		page := api.report(path)
		for _, f := range page.Data {
			routes = append(routes, f.RouteID)
		}
		if page.NextCursor == "" {
			break
		}
		path = Prefix + "/conformance?limit=2&cursor=" + page.NextCursor
	}
	if !slices.Equal(routes, []string{"a", "b", "c"}) {
		t.Fatalf("pages listed %v; want a, b, c once each", routes)
	}
}

func TestConformanceReportRefusesUnknownFiltersAndWrites(t *testing.T) {
	api := conformanceAPI(t)
	for _, q := range []string{"?rule=no-such-rule", "?severity=fatal", "?status=700", "?routes=x", "?limit=0"} {
		if r := api.do("GET", Prefix+"/conformance"+q, ""); r.status != http.StatusBadRequest {
			t.Errorf("GET %s: got %d; want 400", q, r.status)
		}
	}
	r := api.do("DELETE", Prefix+"/conformance", "")
	if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "GET, HEAD, OPTIONS" {
		t.Fatalf("DELETE: got %d, Allow %q; want 405 with GET, HEAD, OPTIONS", r.status, r.header.Get("Allow"))
	}
}
