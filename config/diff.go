package config

// The one field diff of the configuration: what a document changes in the
// draft (plan.go) and what one revision changes from another are both
// listed with it, so that both show a change, and hide a secret, alike.

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/doctree"
)

// secretShown stands for a secret's value in a change set.
const secretShown = "(secret)"

// diff lists the members in which next differs from current, by JSON
// pointer within the resource, compared as JSON trees without what the
// store sets. A write-only secret's value is replaced by secretShown.
func diff(current, next gatehouse.Resource) []FieldChange {
	a, b := tree(current), tree(next)
	var out []FieldChange
	diffTree("", a, b, &out)
	return out
}

// tree is a resource's JSON as a tree, without id, version and times.
func tree(res gatehouse.Resource) map[string]any {
	body, err := json.Marshal(res)
	if err != nil {
		return nil
	}
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	if dec.Decode(&m) != nil {
		return nil
	}
	for _, k := range []string{"id", "version", "created_at", "updated_at"} {
		delete(m, k)
	}
	return m
}

func diffTree(at string, a, b any, out *[]FieldChange) {
	if reflect.DeepEqual(a, b) {
		return
	}
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		for k := range keys {
			diffTree(at+"/"+doctree.EscapeToken(k), am[k], bm[k], out)
		}
		return
	}
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok && bok && len(as) == len(bs) {
		for i := range as {
			diffTree(fmt.Sprintf("%s/%d", at, i), as[i], bs[i], out)
		}
		return
	}
	*out = append(*out, FieldChange{Field: at, From: redact(at, a), To: redact(at, b)})
}

// redact replaces the values of write-only members (an HS256 key's
// secret, a service's TLS client key) within v at pointer at.
func redact(at string, v any) any {
	if v == nil {
		return nil
	}
	if gatehouse.WriteOnlyMember(doctree.UnescapeToken(at[strings.LastIndexByte(at, '/')+1:])) {
		return secretShown
	}
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[k] = redact(at+"/"+doctree.EscapeToken(k), x)
		}
		return m
	case []any:
		s := make([]any, len(t))
		for i, x := range t {
			s[i] = redact(fmt.Sprintf("%s/%d", at, i), x)
		}
		return s
	}
	return v
}

func sortFieldChanges(f []FieldChange) {
	sort.SliceStable(f, func(i, j int) bool { return f[i].Field < f[j].Field })
}

// RevisionDiff is what changes from one revision to another: the
// resources created, updated and deleted, as a change set lists them.
type RevisionDiff struct {
	// From and To are the revisions' numbers; 0 is the empty
	// configuration.
	From    int64    `json:"from"`
	To      int64    `json:"to"`
	Changes []Change `json:"changes"`
	Summary Summary  `json:"summary"`
}

// DiffRevisions lists what changes from revision from to revision to (nil
// is the empty configuration): kind by kind in creation order, the
// creates and updates in to's order, then the deletes in from's. Both are
// read as stored, unredacted, so that a changed secret is seen: it is
// listed as changed, its values never shown.
func DiffRevisions(from, to *gatehouse.Revision) *RevisionDiff {
	out := &RevisionDiff{Changes: []Change{}}
	if from != nil {
		out.From = from.Number
	}
	if to != nil {
		out.To = to.Number
	}
	before, after := revisionItems(from), revisionItems(to)
	for _, kind := range creationOrder {
		old := map[string]*revisionItem{}
		for _, it := range before[kind] {
			old[it.id] = it
		}
		kept := map[string]bool{}
		for _, it := range after[kind] {
			kept[it.id] = true
			c := Change{Kind: kind, ID: it.id, Name: it.name, Warnings: it.warnings}
			prev := old[it.id]
			if prev == nil {
				c.Action = gatehouse.OpCreate
				out.Summary.Create++
				out.Changes = append(out.Changes, c)
				continue
			}
			if prev.secret != it.secret {
				c.Fields = append(c.Fields, FieldChange{Field: it.secretField, From: secretShown, To: secretShown})
			}
			diffTree("", prev.tree, it.tree, &c.Fields)
			if len(c.Fields) == 0 {
				continue
			}
			sortFieldChanges(c.Fields)
			c.Action = gatehouse.OpUpdate
			out.Summary.Update++
			out.Changes = append(out.Changes, c)
		}
		for _, it := range before[kind] {
			if !kept[it.id] {
				out.Summary.Delete++
				out.Changes = append(out.Changes, Change{Action: gatehouse.OpDelete, Kind: kind, ID: it.id, Name: it.name})
			}
		}
	}
	return out
}

// revisionItem is one resource of a revision, as DiffRevisions compares
// it.
type revisionItem struct {
	id, name string
	tree     map[string]any
	// secret is a credential's stored hash, compared but never shown;
	// secretField names it in a change.
	secret, secretField string
	warnings            []string
}

// revisionItems are rev's resources by kind, in the revision's order.
func revisionItems(rev *gatehouse.Revision) map[gatehouse.Kind][]*revisionItem {
	out := map[gatehouse.Kind][]*revisionItem{}
	if rev == nil {
		return out
	}
	add := func(res gatehouse.Resource) {
		out[res.Kind()] = append(out[res.Kind()], &revisionItem{id: res.Base().ID, name: res.Index().Name,
			tree: tree(res), warnings: Risks(res)})
	}
	for _, s := range rev.Specs {
		add(s)
	}
	for _, p := range rev.Policies {
		add(p)
	}
	for _, s := range rev.Services {
		add(s)
	}
	for _, r := range rev.Routes {
		add(r)
	}
	for _, c := range rev.Consumers {
		add(c)
	}
	for _, c := range rev.Credentials {
		it := &revisionItem{id: c.ID, name: c.Username, tree: credentialTree(c), secret: c.Hash, secretField: "/key"}
		if c.Type == gatehouse.CredentialBasicAuth {
			it.secretField = "/password"
		}
		out[gatehouse.KindCredential] = append(out[gatehouse.KindCredential], it)
	}
	return out
}

// credentialTree is a revision's credential as a tree, without its hash:
// the members a credential shows.
func credentialTree(c *gatehouse.RevisionCredential) map[string]any {
	shown := *c
	shown.Hash = ""
	body, err := json.Marshal(&shown)
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return nil
	}
	delete(m, "id")
	return m
}
