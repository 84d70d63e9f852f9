package config

import (
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// holder is a record as the draft would hold it once a plan is applied:
// its unique keys, references and parent as written, and the entry that
// gives it ("" for a record the document lacks).
type holder struct {
	ref     gatehouse.Ref
	rec     *gatehouse.Record
	pointer string
}

// clashes lists every change of a plan that the store would refuse
// because of records that stay (409): a unique key another record holds
// afterwards, a delete of what a remaining record uses, a delete of a
// consumer whose credentials the plan keeps (the store's cascade would
// take them unlisted). Each key clash is placed at its entry's pointer;
// a delete has no place in the document and is placed at "kind/id".
// Clashes among entries alone are Check's (422); a key hidden from Check
// (a key-auth credential keeping its stored key) is judged here too.
func clashes(d *draftState, entries []*entry, changes []gatehouse.Change, opts ApplyOptions) []Problem {
	written := map[gatehouse.Ref]*gatehouse.Record{}
	var deletes []gatehouse.Ref
	deleted := map[gatehouse.Ref]bool{}
	for _, c := range changes {
		ref := gatehouse.Ref{Kind: c.Record.Kind, ID: c.Record.ID}
		if c.Op == gatehouse.OpDelete {
			deletes = append(deletes, ref)
			deleted[ref] = true
		} else {
			written[ref] = c.Record
		}
	}
	inDoc := map[gatehouse.Ref]bool{}
	for _, e := range entries {
		inDoc[gatehouse.Ref{Kind: e.res.Kind(), ID: e.res.Base().ID}] = true
	}

	// What stays: first the records the document lacks, then the entries
	// in document order, so that each clash is met at an entry.
	var stay []*holder
	for _, kind := range creationOrder {
		for _, id := range d.order[kind] {
			ref := gatehouse.Ref{Kind: kind, ID: id}
			if !inDoc[ref] && !deleted[ref] {
				stay = append(stay, &holder{ref: ref, rec: d.records[kind][id]})
			}
		}
	}
	for _, tok := range d.tokens {
		stay = append(stay, &holder{ref: gatehouse.Ref{Kind: gatehouse.KindToken, ID: tok.ID}, rec: tok})
	}
	for _, e := range entries {
		ref := gatehouse.Ref{Kind: e.res.Kind(), ID: e.res.Base().ID}
		rec := written[ref]
		if rec == nil {
			rec = d.records[ref.Kind][ref.ID] // unchanged
		}
		if rec != nil {
			stay = append(stay, &holder{ref: ref, rec: rec, pointer: e.pointer})
		}
	}

	var problems []Problem
	held := map[gatehouse.Kind]map[string]*holder{}
	reported := map[[2]gatehouse.Ref]bool{}
	for _, h := range stay {
		if held[h.ref.Kind] == nil {
			held[h.ref.Kind] = map[string]*holder{}
		}
		for _, key := range h.rec.DistinctKeys() {
			if key == "name:" {
				continue // unnamed: no name to hold
			}
			other := held[h.ref.Kind][key]
			if other == nil {
				held[h.ref.Kind][key] = h
				continue
			}
			if h.pointer == "" || reported[[2]gatehouse.Ref{h.ref, other.ref}] {
				continue
			}
			reported[[2]gatehouse.Ref{h.ref, other.ref}] = true
			problems = append(problems, Problem{Pointer: h.pointer, Code: gatehouse.ECONFLICT,
				Message: keyClash(key, d.describe(other, opts))})
		}
	}

	// Who stays using or owning what the plan deletes.
	children, users := map[gatehouse.Ref][]*holder{}, map[gatehouse.Ref][]*holder{}
	for _, h := range stay {
		if p := h.rec.Parent; p != nil && deleted[*p] {
			children[*p] = append(children[*p], h)
		}
		for _, r := range h.rec.DistinctRefs() {
			if deleted[r] {
				users[r] = append(users[r], h)
			}
		}
	}
	for _, doomed := range deletes {
		var kept []string
		for _, h := range children[doomed] {
			kept = append(kept, d.describe(h, opts))
		}
		pointer := fmt.Sprintf("%s/%s", doomed.Kind, doomed.ID)
		if len(kept) > 0 {
			problems = append(problems, Problem{Pointer: pointer, Code: gatehouse.ECONFLICT,
				Message: fmt.Sprintf("cannot be deleted: it holds %s, which deleting it would delete too, though this document does not manage it", strings.Join(kept, ", "))})
		}
		for _, u := range users[doomed] {
			problems = append(problems, Problem{Pointer: pointer, Code: gatehouse.ECONFLICT,
				Message: fmt.Sprintf("cannot be deleted: %s uses it", d.describe(u, opts))})
		}
	}
	return problems
}

// keyClash says that an entry holds the unique key another record (said
// by other) keeps holding, in the client's words: never the key itself,
// which is internal (a match key) or a secret's hash.
func keyClash(key, other string) string {
	prefix, value, _ := strings.Cut(key, ":")
	switch prefix {
	case "name":
		return fmt.Sprintf("has the name %q, which %s holds", value, other)
	case "match":
		return fmt.Sprintf("matches the same requests at the same priority as %s", other)
	case "key":
		return fmt.Sprintf("has the same API key as %s", other)
	case "basic":
		return fmt.Sprintf("has the username %q, which %s holds", value, other)
	}
	return fmt.Sprintf("holds a value that must be unique, which %s holds", other)
}

// describe names a record that stays, for a message: which it is, and
// why the plan leaves it (at an entry, outside the selection, or not in
// the document of an apply that does not delete).
func (d *draftState) describe(h *holder, opts ApplyOptions) string {
	name := fmt.Sprintf("%s %q", Singular(h.ref.Kind), h.ref.ID)
	if h.ref.Kind == gatehouse.KindCredential && h.rec.Parent != nil {
		name += fmt.Sprintf(" of consumer %q", h.rec.Parent.ID)
	}
	switch {
	case h.pointer != "":
		return fmt.Sprintf("%s (%s)", name, h.pointer)
	case h.ref.Kind == gatehouse.KindToken:
		return "admin " + name
	}
	if res, err := d.resource(h.ref.Kind, h.ref.ID); err == nil && res != nil && !gatehouse.HasTags(res, opts.SelectTags) {
		return name + " (outside the selected tags)"
	}
	return name + " (not in the document, and kept: only a sync deletes)"
}
