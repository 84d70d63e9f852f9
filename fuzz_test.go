package gatehouse_test

import (
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/strictjson"
)

var resourceSeeds = []string{
	// specs
	`{"name":"s","media_type":"application/json","document":"{\"openapi\":\"3.1.0\",\"info\":{\"title\":\"t\",\"version\":\"1\"},\"paths\":{}}"}`,
	`{"media_type":"application/yaml","document":"openapi: 3.0.3\ninfo: {title: T, version: '1'}\npaths: {}\n"}`,
	// services
	`{"name":"svc","url":"http://example.com:8080/base"}`,
	`{"id":"svc-1","name":"svc","targets":[{"url":"http://a:1"},{"url":"https://[::1]:8443","weight":0}],"connect_timeout_ms":1,"read_timeout_ms":3600000,"retries":10}`,
	`{"name":"svc","url":"http://a","targets":[]}`,
	`{"name":"svc","url":"ftp://user:pw@host:70000/?q#f"}`,
	`{"name":"svc","targets":[{"url":"http://a","weight":0}]}`,
	`{"name":"svc","targets":[null,{"url":1,"weight":"x"}]}`,
	// routes
	`{"service_id":"svc","paths":["/users/{id}","/api/*"],"hosts":["*.example.com"],"methods":["get","POST"],"strip_path":true,"priority":-3}`,
	`{"name":"r","service_id":"svc","hosts":["Example.COM"],"max_body_bytes":1048576}`,
	`{"service_id":"svc","paths":["/a/{id","/b/*/c","a","/x/{1bad}","/x/{id}/{id}"]}`,
	`{"service_id":"svc","hosts":["a.*.com","*"],"methods":["G ET",""]}`,
	// consumers
	`{"name":"alice","groups":["ops","dev"]}`,
	`{"id":"c1","name":"bob","groups":[]}`,
	`{"name":"x","groups":["a","A",""]}`,
	// credentials
	`{"type":"key-auth"}`,
	`{"type":"key-auth","key":"0123456789abcdef","consumer_id":"c1"}`,
	`{"type":"basic-auth","username":"alice","password":"s3cr3t-pw"}`,
	`{"type":"basic-auth","username":"alice","password":"short","key":"x"}`,
	// policies
	`{"name":"rl","type":"rate-limit","config":{"requests":10,"per":"minute"}}`,
	`{"name":"acl","type":"acl","config":{"allow":["ops"]}}`,
	`{"name":"acl","type":"acl","config":{"deny":["x"],"allow":["y"]}}`,
	`{"name":"sl","type":"size-limit","config":{"max_bytes":1048576}}`,
	`{"name":"p","type":"rate-limit","config":{"requests":1,"per":"second","x":{"y":[1,2,null]}}}`,
	`{"name":"p","type":"size-limit","config":null}`,
	// tokens
	`{}`,
	`{"name":"ci","role":"read-only","consumer_id":"c1","expires_at":"2030-01-01T00:00:00Z"}`,
	`{"role":"admin","expires_at":"2030-01-01T01:00:00.5+01:00"}`,
	`{"expires_at":"2030-01-01T00:00:00+00:00"}`,
	`{"expires_at":"2030-01-01T00:00:00+23:59"}`,
	`{"token":"gha_x"}`,
	// every kind: meta and edge cases
	`{"id":"x","version":7,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-02T00:00:00-05:00","name":"n"}`,
	`{"id":"..","name":"a"}`,
	`null`,
	`[]`,
	`{"name":"a","name":"b"}`,
	`{"name":"\u00e9\ud800"}`,
}

// normalizeResource removes differences a JSON round trip may make without
// changing meaning: an empty omitempty slice becomes nil, and a time's
// location (a "+00:00" offset parses as Local, "Z" as UTC).
func normalizeResource(res gatehouse.Resource) {
	utc := func(t *time.Time) {
		if t != nil {
			*t = t.UTC()
		}
	}
	m := res.Base()
	utc(&m.CreatedAt)
	utc(&m.UpdatedAt)
	switch r := res.(type) {
	case *gatehouse.Service:
		if len(r.Targets) == 0 {
			r.Targets = nil
		}
	case *gatehouse.Token:
		utc(r.ExpiresAt)
	}
}

func FuzzDecodeResource(f *testing.F) {
	for _, s := range resourceSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, kind := range gatehouse.Kinds {
			res := constructors[kind]()
			errs := strictjson.Decode(b, res)
			for _, e := range errs {
				if e.Field == "" || e.Message == "" {
					t.Fatalf("%s: empty field error %+v", kind, e)
				}
			}
			bad, semantic := res.Check()
			for _, e := range append(bad, semantic...) {
				if e.Field == "" || e.Message == "" {
					t.Fatalf("%s: empty check error %+v", kind, e)
				}
			}
			if len(errs) > 0 || len(bad) > 0 || len(semantic) > 0 {
				continue
			}
			if r, ok := res.(*gatehouse.Route); ok {
				r.Normalize()
				if b2, s2 := r.Check(); len(b2)+len(s2) > 0 {
					t.Fatalf("a valid route is invalid after Normalize: %v %v", b2, s2)
				}
				if keys := r.MatchKeys(); len(keys) == 0 || len(keys) > gatehouse.MaxMatchKeys {
					t.Fatalf("a valid route has %d match keys", len(keys))
				}
			}
			rec, err := gatehouse.Encode(res, nil)
			if err != nil {
				t.Fatalf("%s: a valid resource does not encode: %v\n%s", kind, err, b)
			}
			fresh := constructors[kind]()
			if err := gatehouse.Decode(rec, fresh); err != nil {
				t.Fatalf("%s: its record does not decode: %v\n%s", kind, err, rec.Body)
			}
			if b2, s2 := fresh.Check(); len(b2)+len(s2) > 0 {
				t.Fatalf("%s: valid before the round trip, not after: %v %v\n%s", kind, b2, s2, rec.Body)
			}
			normalizeResource(res)
			normalizeResource(fresh)
			if !reflect.DeepEqual(fresh, res) {
				t.Fatalf("%s: round trip changed the resource\n in  %s\n got %#v\nwant %#v", kind, b, fresh, res)
			}
		}
	})
}

// FuzzParseRevisionNumber holds ParseRevisionNumber to RevisionID's
// spelling: what it reads is a number RevisionID writes back the same, and
// every number RevisionID writes reads back.
func FuzzParseRevisionNumber(f *testing.F) {
	for _, s := range []string{"0", "1", "42", "007", "-1", "+1", "1e3", " 1", "9223372036854775807", "9223372036854775808", "", "٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := gatehouse.ParseRevisionNumber(s)
		if ok && (n < 0 || gatehouse.RevisionID(n) != s) {
			t.Fatalf("ParseRevisionNumber(%q) = %d, true; want only what RevisionID spells", s, n)
		}
		if !ok && n != 0 {
			t.Fatalf("ParseRevisionNumber(%q) = %d, false; want 0 with false", s, n)
		}
		if m, err := strconv.ParseInt(s, 10, 64); err == nil && m >= 0 {
			if got, ok := gatehouse.ParseRevisionNumber(gatehouse.RevisionID(m)); !ok || got != m {
				t.Fatalf("ParseRevisionNumber(RevisionID(%d)) = %d, %v; want %d, true", m, got, ok, m)
			}
		}
	})
}
