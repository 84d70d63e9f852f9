package policy

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/openapi"
)

const petsDoc = `{"openapi":"3.0.3","info":{"title":"pets","version":"1"},"paths":{"/pets":{"get":{
	"parameters":[{"name":"limit","in":"query","schema":{"type":"integer","maximum":%d}}],
	"responses":{"200":{"description":"ok"}}}}}}`

func openapiRevision(t testing.TB, spec *gatehouse.Spec) *gatehouse.Revision {
	p := testPolicy(t, `{"type":"openapi","config":{"spec_id":"pets","base_path":"/"}}`, "contract")
	return &gatehouse.Revision{Number: 1, Policies: []*gatehouse.Policy{p}, Specs: []*gatehouse.Spec{spec},
		Routes: []*gatehouse.Route{{Meta: gatehouse.Meta{ID: "r"}, ServiceID: "s", Policies: []string{p.ID}}}}
}

func petsSpec(version int64, max int) *gatehouse.Spec {
	return &gatehouse.Spec{Meta: gatehouse.Meta{ID: "pets", Version: version}, Name: "pets",
		Document: strings.Replace(petsDoc, "%d", string(rune('0'+max)), 1)}
}

// compiledSpecOf is the Spec the route's openapi Step checks against.
func compiledSpecOf(t *testing.T, set *Set) *openapi.Spec {
	t.Helper()
	chain := set.Chain("r")
	if chain == nil || len(chain.steps) != 1 {
		t.Fatalf("chain %+v; want the openapi step", chain)
	}
	switch s := chain.steps[0].(type) {
	case *openAPI:
		return s.checks[0].spec
	case *openAPIAudited:
		return s.checks[0].spec
	}
	t.Fatalf("step %T; want the openapi step", chain.steps[0])
	return nil
}

func TestRedeployingAnUnchangedSpecDoesNotCompileItAgain(t *testing.T) {
	env := &Env{State: NewState()}
	first := compiledSpecOf(t, rlCompile(t, openapiRevision(t, petsSpec(1, 5)), env))
	if again := compiledSpecOf(t, rlCompile(t, openapiRevision(t, petsSpec(1, 5)), env)); again != first {
		t.Fatal("the same spec version was compiled again")
	}
	if next := compiledSpecOf(t, rlCompile(t, openapiRevision(t, petsSpec(2, 5)), env)); next == first {
		t.Fatal("a new spec version kept the old compilation")
	}
	// The same id and version with another document (deleted and written
	// again) is another document.
	if other := compiledSpecOf(t, rlCompile(t, openapiRevision(t, petsSpec(2, 7)), env)); other == first {
		t.Fatal("another document under the same version kept the old compilation")
	}
}

func TestSpecThatCannotBeValidatedFailsTheRevision(t *testing.T) {
	spec := petsSpec(1, 5)
	spec.Document = strings.Replace(spec.Document, `"schema":{"type":"integer","maximum":5}`,
		`"content":{"application/xml":{"schema":{"type":"integer"}}}`, 1)
	_, err := Compile(openapiRevision(t, spec), &Env{State: NewState()})
	if err == nil || !strings.Contains(err.Error(), `spec "pets" cannot be validated: /paths/~1pets/get/parameters/0/content/application~1xml`) {
		t.Fatalf("Compile: %v; want the problem named", err)
	}
}
