package config

import (
	"context"
	"errors"
	"fmt"

	"github.com/gatehouse/gatehouse"
)

// ApplyOptions says how a document is applied.
type ApplyOptions struct {
	// SelectTags are the tags of the part of the configuration the
	// document manages: only records with all of them are updated or
	// deleted, and every entry must carry them.
	SelectTags []string
	// Prune makes Apply a sync: it deletes what the document (within the
	// selection) lacks.
	Prune bool
	// DryRun computes the change set without writing, refused exactly
	// as the write would be.
	DryRun bool
	// IfDraft is the client's If-Match: the draft tag the document was
	// written against; "" for none.
	IfDraft string
}

// applyAttempts bounds how often Apply plans again after another writer
// changed the draft between its plan and its write.
const applyAttempts = 4

// Apply judges doc against the store's draft and applies it in one
// Store.Apply, or with DryRun has the store judge it in one Store.Try and
// says what it would change. Errors are *gatehouse.Error; field errors
// name JSON pointers into the document.
func Apply(ctx context.Context, store gatehouse.Store, doc *Document, opts ApplyOptions) (*ChangeSet, error) {
	checkOpts := CheckOptions{SelectTags: opts.SelectTags, External: true}
	for attempt := 1; ; attempt++ {
		d, err := readDraft(ctx, store)
		if err != nil {
			return nil, err
		}
		if opts.IfDraft != "" && opts.IfDraft != d.tag {
			return nil, gatehouse.DraftChanged(d.tag, opts.IfDraft)
		}
		// Judged against this draft: an entry that updates a resource
		// keeps its write-only and server-set members, as PUT keeps them.
		entries, problems := judge(doc, checkOpts, d.shown)
		if len(problems) > 0 {
			return nil, ProblemsError(problems)
		}
		p, problems, err := makePlan(d, entries, opts)
		if err != nil {
			return nil, err
		}
		if len(problems) > 0 {
			return nil, ProblemsError(problems)
		}
		if len(p.changes) == 0 {
			p.set.NewDraft = d.tag
			return &p.set, nil
		}
		// The draft the plan was made on is the one it is applied to. A
		// dry run has the store judge the changes as it would write them,
		// and undo them: it answers what the real request would.
		if opts.DryRun {
			err = store.Try(ctx, p.changes, d.tag)
		} else {
			err = store.Apply(ctx, p.changes, d.tag)
		}
		if err == nil {
			p.set.NewDraft = d.tag
			if !opts.DryRun {
				p.set.NewDraft = p.newDraft()
			}
			return &p.set, nil
		}
		var ce *gatehouse.ChangeError
		if errors.As(err, &ce) {
			return nil, p.changeError(ce)
		}
		if gatehouse.ErrorCode(err) != gatehouse.EPRECONDITION {
			return nil, err
		}
		if opts.IfDraft != "" {
			return nil, err
		}
		if attempt == applyAttempts {
			return nil, gatehouse.Errorf(gatehouse.EUNAVAILABLE, "The configuration is being changed by other writers faster than this document could be applied; retry.")
		}
	}
}

// newDraft is the draft tag after the plan's changes were applied: the
// snapshot's stamps with the versions the store assigned, without what
// was deleted. A plan deletes a consumer's credentials itself before the
// consumer (clashes refuses one that would leave any to the store's
// cascade), so every record that goes is one of its deletes.
func (p *plan) newDraft() string {
	versions := map[gatehouse.Ref]int64{}
	for kind, recs := range p.draft.records {
		for id, rec := range recs {
			versions[gatehouse.Ref{Kind: kind, ID: id}] = rec.Version
		}
	}
	for _, c := range p.changes {
		ref := gatehouse.Ref{Kind: c.Record.Kind, ID: c.Record.ID}
		if c.Op != gatehouse.OpDelete {
			versions[ref] = c.Record.Version
			continue
		}
		delete(versions, ref)
	}
	stamps := make([]gatehouse.Stamp, 0, len(versions))
	for ref, v := range versions {
		stamps = append(stamps, gatehouse.Stamp{Kind: ref.Kind, ID: ref.ID, Version: v})
	}
	return gatehouse.DraftTag(stamps)
}

// changeError names the entry (or, for a delete, the resource) whose
// change the store refused, with the store's reason and status.
func (p *plan) changeError(ce *gatehouse.ChangeError) error {
	if ce.Index < 0 || ce.Index >= len(p.changes) {
		return ce.Err
	}
	c, field := p.changes[ce.Index], p.pointers[ce.Index]
	msg := gatehouse.ErrorMessage(ce.Err)
	if c.Op == gatehouse.OpDelete {
		// A delete has no place in the document: the field names the
		// resource the document no longer holds.
		field = fmt.Sprintf("%s/%s", c.Record.Kind, c.Record.ID)
		msg = "cannot be deleted: " + msg
	}
	code := gatehouse.ErrorCode(ce.Err)
	if code == gatehouse.EINTERNAL || code == gatehouse.EUNAVAILABLE {
		return ce.Err
	}
	return &gatehouse.Error{Code: code, Message: "The store refused a change of the document.",
		Fields: []gatehouse.FieldError{{Field: field, Message: msg}}, Err: ce}
}

func hasCode(problems []Problem, code gatehouse.Code) bool {
	for _, p := range problems {
		if p.Code == code {
			return true
		}
	}
	return false
}

// ProblemsError turns a document's problems into one error, as the admin
// API answers a resource: 400 listing the malformed entries if there are
// any, else 422 listing what cannot be applied, else 409 listing the
// clashes with the store. Each field is a problem's pointer.
func ProblemsError(problems []Problem) error {
	if len(problems) == 0 {
		return nil
	}
	code := gatehouse.ECONFLICT
	switch {
	case hasCode(problems, gatehouse.EINVALID) || hasCode(problems, ""):
		code = gatehouse.EINVALID
	case hasCode(problems, gatehouse.EUNPROCESSABLE):
		code = gatehouse.EUNPROCESSABLE
	}
	var fields []gatehouse.FieldError
	for _, p := range problems {
		if p.Code == code || (p.Code == "" && code == gatehouse.EINVALID) {
			fields = append(fields, gatehouse.FieldError{Field: p.Pointer, Message: p.Message})
		}
	}
	switch code {
	case gatehouse.EINVALID:
		e := gatehouse.Invalid(fields)
		e.Message = "The configuration document is invalid."
		return e
	case gatehouse.EUNPROCESSABLE:
		e := gatehouse.Unprocessable(fields)
		e.Message = "The configuration document is well-formed but cannot be applied."
		return e
	}
	return &gatehouse.Error{Code: gatehouse.ECONFLICT, Message: "The configuration document conflicts with the store.", Fields: fields}
}
