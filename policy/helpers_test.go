package policy

import (
	"encoding/json"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/testenv"
)

// testClock is Env.Now for tests: time moves only when told. Background
// work (the JWKS fetcher) reads it from its own goroutine.
type testClock = testenv.Clock

// testPolicy is a policy from JSON, normalised and checked as the admin
// API stores it, at version 1. Its id, and its name, are id when the JSON
// gives none.
func testPolicy(t testing.TB, js, id string) *gatehouse.Policy {
	t.Helper()
	p := gatehouse.NewPolicy()
	if err := json.Unmarshal([]byte(js), p); err != nil {
		t.Fatal(err)
	}
	if p.ID == "" {
		p.ID = id
	}
	if p.Name == "" {
		p.Name = p.ID
	}
	p.Normalize()
	if bad, semantic := p.Check(); len(bad)+len(semantic) > 0 {
		t.Fatalf("policy %s: %v %v", js, bad, semantic)
	}
	p.Version = 1
	return p
}
