package config

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Deployer is what serving from files needs of the deployer: deploying
// the draft, and recording a change it refused.
type Deployer interface {
	Create(ctx context.Context, dep *gatehouse.Deployment) error
	Refuse(ctx context.Context, reason string) (*gatehouse.Deployment, error)
}

// Files serves a configuration from files (gatehouse serve --config): the
// files are the whole draft. Each change of their content is checked,
// applied to the store in one transaction (deleting what the files no
// longer hold) and deployed as a new revision; a change that is not valid
// is logged and recorded as a failed deployment, and the last good
// revision keeps serving.
type Files struct {
	Paths    []string
	Store    gatehouse.Store
	Deployer Deployer
	Log      *slog.Logger
	// Env is LoadOptions.Env.
	Env func(name string) (string, bool)

	// seen is the digest of the content last handled, valid or not, so
	// that a broken file is reported once, not at every poll; pending is
	// that of content read once and waiting to be read again (poll).
	seen, pending [sha256.Size]byte
	// undeployed says the draft was changed but deploying it failed: the
	// next handling deploys even if the files then change nothing more.
	undeployed bool
}

// maxReasonProblems bounds the problems a refused deployment's reason
// lists; the log has them all.
const maxReasonProblems = 10

// Sync reads the files and, if their content changed since the last call,
// applies and deploys it. changed reports whether it deployed. A
// configuration that cannot be served is returned as a *FilesError whose
// problems are placed by file, line and column; the caller decides
// whether that stops the node (at start) or is recorded (Run).
func (f *Files) Sync(ctx context.Context) (changed bool, err error) {
	src, problems := Load(f.Paths, LoadOptions{Env: f.Env})
	digest := f.digest(src, problems)
	if digest == f.seen {
		return false, nil
	}
	return f.handle(ctx, src, problems, digest)
}

// handle applies and deploys what was read, or refuses it.
func (f *Files) handle(ctx context.Context, src *Source, problems []Problem, digest [sha256.Size]byte) (changed bool, err error) {
	var doc *Document
	if len(problems) == 0 {
		doc, problems = Decode(src.Root)
	}
	if len(problems) == 0 {
		problems = Check(doc, CheckOptions{Fresh: true})
	}
	var cs *ChangeSet
	if len(problems) == 0 {
		cs, err = Apply(ctx, f.Store, doc, ApplyOptions{Prune: true})
		if err != nil {
			problems = problemsOf(err)
			if problems == nil {
				// The store failed, not the files: try again next time.
				return false, err
			}
		}
	}
	f.seen = digest
	if len(problems) > 0 {
		return false, &FilesError{Problems: locateAll(src, problems)}
	}
	if len(cs.Changes) == 0 && !f.undeployed {
		return false, nil
	}
	if err := f.Deployer.Create(ctx, &gatehouse.Deployment{Action: gatehouse.ActionDeploy}); err != nil {
		// Applied but not deployed: handle the same content again, and
		// deploy then, though applying it will change nothing.
		f.seen = [sha256.Size]byte{}
		f.undeployed = true
		return false, err
	}
	f.undeployed = false
	return true, nil
}

// Run polls the files every interval until ctx is done, deploying each
// valid change and recording each invalid one.
func (f *Files) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := f.poll(ctx)
		var fe *FilesError
		switch {
		case errors.As(err, &fe):
			f.Log.Error("configuration files refused; the last good revision keeps serving", "problems", fe.Lines())
			if _, rerr := f.Deployer.Refuse(ctx, fe.Error()); rerr != nil {
				f.Log.Error("recording the refused configuration", "error", rerr)
			}
		case err != nil && ctx.Err() == nil:
			f.Log.Error("applying the configuration files", "error", err)
		case changed:
			f.Log.Info("configuration files changed: deployed them")
		}
	}
}

// poll is Sync for a change that has settled: content is handled once
// the files have read the same at two polls in a row. A file caught
// half-written (an editor saving it, a copy under way) could be valid and
// hold only part of the configuration, which a sync would then make the
// whole of it.
func (f *Files) poll(ctx context.Context) (changed bool, err error) {
	src, problems := Load(f.Paths, LoadOptions{Env: f.Env})
	digest := f.digest(src, problems)
	if digest == f.seen {
		return false, nil
	}
	if digest != f.pending {
		f.pending = digest
		return false, nil
	}
	return f.handle(ctx, src, problems, digest)
}

// digest identifies what was read: the merged tree, or the problems
// reading it (a file that stays broken the same way is reported once).
func (f *Files) digest(src *Source, problems []Problem) [sha256.Size]byte {
	var v any = problems
	if len(problems) == 0 {
		v = src.Root
	}
	b, err := json.Marshal(v) // map keys sorted: the same tree, the same bytes
	if err != nil {
		return [sha256.Size]byte{}
	}
	return sha256.Sum256(b)
}

// FilesError is configuration files that cannot be served, with each
// problem at its place.
type FilesError struct {
	Problems []Problem
}

// Lines returns one line per problem: file:line:column: pointer: message.
func (e *FilesError) Lines() []string {
	out := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p.String()
	}
	return out
}

func (e *FilesError) Error() string {
	lines := e.Lines()
	more := ""
	if len(lines) > maxReasonProblems {
		more = fmt.Sprintf("; and %d more", len(lines)-maxReasonProblems)
		lines = lines[:maxReasonProblems]
	}
	return "the configuration files are not valid: " + strings.Join(lines, "; ") + more
}

func locateAll(src *Source, problems []Problem) []Problem {
	if src == nil {
		return problems
	}
	out := make([]Problem, len(problems))
	for i, p := range problems {
		out[i] = src.Locate(p)
	}
	return out
}

// problemsOf turns Apply's error into problems, or nil if it is not about
// the document (the store unavailable).
func problemsOf(err error) []Problem {
	var e *gatehouse.Error
	if !errors.As(err, &e) {
		return nil
	}
	switch e.Code {
	case gatehouse.EINVALID, gatehouse.EUNPROCESSABLE, gatehouse.ECONFLICT:
	default:
		return nil
	}
	if len(e.Fields) == 0 {
		return []Problem{{Message: e.Message, Code: e.Code}}
	}
	out := make([]Problem, len(e.Fields))
	for i, fe := range e.Fields {
		out[i] = Problem{Pointer: fe.Field, Message: fe.Message, Code: e.Code}
	}
	return out
}
