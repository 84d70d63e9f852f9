package main

// gatehouse revisions diff: what changes from one revision to another, or
// what a deployment changed, printed as config diff prints a change set.

import (
	"context"
	"fmt"
	"io"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/client"
	"github.com/gatehouse/gatehouse/config"
	"github.com/spf13/cobra"
)

func newRevisionsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revisions",
		Short: "Compare deployed revisions",
	}
	needsCommand(cmd)
	cmd.AddCommand(newRevisionsDiffCmd())
	return cmd
}

func newRevisionsDiffCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "diff FROM TO | --deployment ID",
		Short: "Show what changes from one revision to another",
		Long: `Show what changes from revision FROM to revision TO, as "config diff" shows a
change set: what is created (+), updated (~, with each field's value before and
after) and deleted (-). 0 is the empty configuration. Secrets are compared but
never shown: a changed one shows as "(secret)".

--deployment ID shows what a deployment changed: the difference from the
revision it replaced (see gatehouse status) to the revision it applied.`,
	}
	cf := addClientFlags(cmd)
	var deployment string
	cmd.Flags().StringVar(&deployment, "deployment", "", "show what this deployment changed")
	cmd.Args = func(cmd *cobra.Command, args []string) error {
		if deployment != "" {
			return noArgs(cmd, args)
		}
		return exactArgs(2)(cmd, args)
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var from, to int64
		var title string
		if deployment == "" {
			var n [2]int64
			for i, name := range []string{"FROM", "TO"} {
				var ok bool
				if n[i], ok = gatehouse.ParseRevisionNumber(args[i]); !ok {
					return usagef("%s must be a revision number (0 for the empty configuration), not %q", name, args[i])
				}
			}
			from, to = n[0], n[1]
			title = fmt.Sprintf("From %s to %s:", revisionTitle(from), revisionTitle(to))
		}
		c, err := cf.client(cmd)
		if err != nil {
			return err
		}
		if deployment != "" {
			dep, err := c.Deployment(cmd.Context(), deployment)
			if err != nil {
				return cf.fail(cmd, err)
			}
			if dep.ReplacedRevision == nil {
				return fmt.Errorf("deployment %s (%s, %s) records no revision it replaced: it has not begun, or never made a revision", dep.ID, describeDeployment(dep), dep.State)
			}
			from, to = *dep.ReplacedRevision, dep.Revision
			title = fmt.Sprintf("Deployment %s (%s, %s), from %s:", dep.ID, describeDeployment(dep), dep.State, revisionTitle(from))
		}
		d, err := revisionDiff(cmd.Context(), c, from, to)
		if err != nil {
			return cf.fail(cmd, err)
		}
		printRevisionDiff(cmd.OutOrStdout(), title, d)
		return nil
	}
	return cmd
}

// revisionDiff reads the diff from one revision to another. The API
// compares with the empty configuration only as FROM; with it as TO
// (an undeploy's), the diff the other way is read and turned round.
func revisionDiff(ctx context.Context, c *client.Client, from, to int64) (*config.RevisionDiff, error) {
	switch {
	case to != 0:
		return c.RevisionDiff(ctx, from, to)
	case from == 0:
		return &config.RevisionDiff{}, nil
	}
	d, err := c.RevisionDiff(ctx, 0, from)
	if err != nil {
		return nil, err
	}
	return reversed(d), nil
}

// reversed is what undoes d: its creates deleted, its deletes created,
// its updates' values swapped, in the reverse order.
func reversed(d *config.RevisionDiff) *config.RevisionDiff {
	out := &config.RevisionDiff{From: d.To, To: d.From,
		Summary: config.Summary{Create: d.Summary.Delete, Update: d.Summary.Update, Delete: d.Summary.Create}}
	for i := len(d.Changes) - 1; i >= 0; i-- {
		c := d.Changes[i]
		switch c.Action {
		case gatehouse.OpCreate:
			c.Action, c.Warnings = gatehouse.OpDelete, nil
		case gatehouse.OpDelete:
			c.Action = gatehouse.OpCreate
		}
		fields := make([]config.FieldChange, len(c.Fields))
		for j, f := range c.Fields {
			fields[j] = config.FieldChange{Field: f.Field, From: f.To, To: f.From}
		}
		c.Fields = fields
		out.Changes = append(out.Changes, c)
	}
	return out
}

// printRevisionDiff prints a diff under its title, then its summary.
func printRevisionDiff(w io.Writer, title string, d *config.RevisionDiff) {
	fmt.Fprintln(w, title)
	printChanges(w, d.Changes, nil)
	fmt.Fprintln(w, summaryText(d.Summary, false))
}

// revisionTitle names a revision in a sentence: "revision 3", or the
// empty configuration for 0.
func revisionTitle(n int64) string {
	if n == 0 {
		return "the empty configuration"
	}
	return fmt.Sprintf("revision %d", n)
}
