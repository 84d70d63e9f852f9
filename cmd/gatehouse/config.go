package main

// gatehouse config: the group, and what its commands share: reading the
// files and printing their problems with file, line and column.

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/client"
	"github.com/gatehouse/gatehouse/config"
	"github.com/spf13/cobra"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Configuration as code: validate, dump, diff, apply, sync, convert",
		Long: `Configuration as code: a gatehouse configuration kept in files (YAML or JSON,
one file or a directory of them, merged), compared with the admin API's draft
and applied to it in one transaction.

  validate   check files offline, as the server would
  dump       write the draft as a file
  diff       show what sync would change (exit 0: none, 2: drift, 1: error)
  apply      create and update what the files hold
  sync       apply, and delete what the files no longer hold
  convert    turn a Kong declarative configuration into gatehouse's format

--select-tag T (repeatable) limits dump, diff, apply, sync and validate to the
resources carrying every selected tag, so that teams manage disjoint parts of
one gateway.`,
	}
	needsCommand(cmd)
	cmd.AddCommand(newValidateCmd(), newDumpCmd(), newDiffCmd(), newApplyCmd(false), newApplyCmd(true), newConvertCmd())
	return cmd
}

// addSelectTags gives cmd the repeatable --select-tag.
func addSelectTags(cmd *cobra.Command) *[]string {
	var tags []string
	cmd.Flags().StringArrayVar(&tags, "select-tag", nil, "manage only the resources with this tag (repeatable: every tag given)")
	return &tags
}

func newValidateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate FILE|DIR...",
		Short: "Check configuration files offline",
		Long: `Check configuration files offline with the checks the admin API runs: types,
unknown fields, references, duplicate ids and matches, policy configurations.
Each problem is printed as file:line:column: JSON pointer: message.

By default the files are judged as a change to a server's draft: a
credential or an HS256 key without its secret may be one the server keeps
(a dump holds no secrets). With --file-only they are judged as
'gatehouse serve --config' judges them, every entry new: each credential
needs its key or password (or its hash), each HS256 key its secret.

With --select-tag, every entry must carry the selected tags, and references
to resources the files do not hold are left for the server to judge.`,
		Args: minArgs(1),
	}
	tags := addSelectTags(cmd)
	fileOnly := cmd.Flags().Bool("file-only", false, "judge the files as 'serve --config' does: every entry new, every secret given")
	cmd.MarkFlagsMutuallyExclusive("file-only", "select-tag")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		src, doc, ok := loadDocument(cmd.ErrOrStderr(), args)
		if !ok {
			return reported
		}
		probs := config.Check(doc, config.CheckOptions{SelectTags: *tags, External: len(*tags) > 0, Fresh: *fileOnly})
		if len(probs) > 0 {
			printProblems(cmd.ErrOrStderr(), src, probs)
			return reported
		}
		fmt.Fprintf(cmd.OutOrStdout(), "valid: %s\n", countEntries(doc))
		// Valid, but risky: said as the server says it of the service.
		for i, svc := range doc.Services {
			for _, warning := range config.Risks(svc) {
				at := src.Locate(config.Problem{Pointer: fmt.Sprintf("/services/%d", i), Message: "warning: " + warning})
				fmt.Fprintln(cmd.ErrOrStderr(), at.String())
			}
		}
		return nil
	}
	return cmd
}

// loadDocument reads files and directories and decodes them into a
// document, printing any problem to w with its place; ok is false if there
// was one.
func loadDocument(w io.Writer, paths []string) (*config.Source, *config.Document, bool) {
	src, probs := config.Load(paths, config.LoadOptions{})
	if len(probs) > 0 || src == nil {
		printProblems(w, src, probs)
		return src, nil, false
	}
	doc, probs := config.Decode(src.Root)
	if len(probs) > 0 || doc == nil {
		printProblems(w, src, probs)
		return src, nil, false
	}
	return src, doc, true
}

// documentBody is the JSON the configuration endpoint is sent: the merged
// tree the files make, so that every JSON pointer the server answers with
// indexes the tree whose places src knows.
func documentBody(src *config.Source) ([]byte, error) {
	return json.Marshal(src.Root)
}

// printProblems prints each problem on a line, placed in its file (src may
// be nil), and for a problem involving a second place that place too, in
// the order of their places.
func printProblems(w io.Writer, src *config.Source, probs []config.Problem) {
	located := make([]config.Problem, len(probs))
	for i, p := range probs {
		if src != nil && p.Pos == nil {
			p = src.Locate(p)
		}
		located[i] = p
	}
	slices.SortStableFunc(located, func(a, b config.Problem) int { return comparePos(a.Pos, b.Pos) })
	for _, p := range located {
		fmt.Fprintln(w, p.String())
		if p.Other != "" {
			var pos *config.Pos
			if src != nil {
				pos = src.Locate(config.Problem{Pointer: p.Other}).Pos
			}
			fmt.Fprintln(w, "  "+config.Problem{Pointer: p.Other, Message: "the other place", Pos: pos}.String())
		}
	}
}

// comparePos orders places by file, line and column; a problem without
// one comes after those with one.
func comparePos(a, b *config.Pos) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
}

// locatedField prints a server's field error (a JSON pointer into the
// document sent) at its place in the files.
func locatedField(src *config.Source) func(client.FieldError) string {
	return func(e client.FieldError) string {
		if !strings.HasPrefix(e.Field, "/") {
			// Not a pointer into the body: a query parameter, say.
			return e.String()
		}
		p := src.Locate(config.Problem{Pointer: e.Field, Message: e.Message})
		return p.String()
	}
}

// countEntries says how many entries of each kind a document holds.
func countEntries(doc *config.Document) string {
	creds := 0
	for _, c := range doc.Consumers {
		creds += len(c.Credentials)
	}
	return fmt.Sprintf("%s, %s, %s, %s, %s, %s",
		plural(len(doc.Services), "service"), plural(len(doc.Routes), "route"),
		plural(len(doc.Consumers), "consumer"), plural(creds, "credential"),
		plural(len(doc.Policies), "policy"), plural(len(doc.Specs), "spec"))
}

// writeOutput writes data to the file path, with perm if it creates it,
// or to standard output if path is "".
func writeOutput(cmd *cobra.Command, path string, data []byte, perm os.FileMode) error {
	if path == "" {
		_, err := cmd.OutOrStdout().Write(data)
		return err
	}
	return os.WriteFile(path, data, perm)
}
