package main

// gatehouse status: the active revision, the nodes and the last
// deployments, as tables.

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/spf13/cobra"
)

func newStatusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the active revision, the nodes and the last deployments",
		Args:  noArgs,
	}
	cf := addClientFlags(cmd)
	var last int
	cmd.Flags().IntVar(&last, "deployments", 5, "how many of the latest deployments to show")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := cf.client(cmd)
		if err != nil {
			return err
		}
		deps, err := c.Deployments(cmd.Context())
		if err != nil {
			return cf.fail(cmd, err)
		}
		nodes, err := c.Nodes(cmd.Context())
		if err != nil {
			return cf.fail(cmd, err)
		}
		printStatus(cmd.OutOrStdout(), deps, nodes, last, time.Now())
		return nil
	}
	return cmd
}

// printStatus writes the status tables. deps are in creation order, the
// order they are applied in.
func printStatus(w io.Writer, deps []*gatehouse.Deployment, nodes []*gatehouse.Node, last int, now time.Time) {
	fmt.Fprintln(w, "Active revision:", activeRevision(deps))

	fmt.Fprintln(w)
	if len(nodes) == 0 {
		fmt.Fprintln(w, "Nodes: none")
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE\tROLE\tSTATE\tSERVES\tLAST SEEN\tERROR")
		for _, n := range nodes {
			serves := "-"
			if n.ServesTraffic() {
				serves = revisionName(n.Revision)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, n.Role, orDash(n.State), serves, ago(now, n.LastSeen), orDash(n.ApplyError))
		}
		tw.Flush()
	}

	fmt.Fprintln(w)
	if len(deps) == 0 {
		fmt.Fprintln(w, "Deployments: none")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DEPLOYMENT\tACTION\tREVISION\tREPLACED\tSTATE\tCREATED\tREASON")
	for _, d := range deps[max(0, len(deps)-last):] {
		// What it replaced is known once it began: "-" before.
		replaced := "-"
		if d.ReplacedRevision != nil {
			replaced = revisionName(*d.ReplacedRevision)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Action, revisionName(d.Revision), replaced, d.State,
			d.CreatedAt.Local().Format("2006-01-02 15:04:05"), orDash(d.Reason))
	}
	tw.Flush()
}

// activeRevision says what the data plane serves: the revision of the
// last deployment that succeeded (a failed one leaves the one before it
// serving), and what is under way after it.
func activeRevision(deps []*gatehouse.Deployment) string {
	active := "none (nothing deployed yet)"
	pending := 0
	for i := len(deps) - 1; i >= 0; i-- {
		d := deps[i]
		if d.State == gatehouse.StateSucceeded {
			active = fmt.Sprintf("%s (deployment %s)", revisionName(d.Revision), d.ID)
			if d.Action == gatehouse.ActionUndeploy {
				active = fmt.Sprintf("none: undeployed by deployment %s", d.ID)
			}
			break
		}
		if !finished(d) {
			pending++
		}
	}
	if pending > 0 {
		active += fmt.Sprintf("; %s under way", plural(pending, "deployment"))
	}
	return active
}

// revisionName is a revision's number, or "none" for 0, the empty
// configuration.
func revisionName(n int64) string {
	if n == 0 {
		return "none"
	}
	return strconv.FormatInt(n, 10)
}

// ago is how long before now t was, in whole seconds, minutes or hours.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return t.Local().Format("2006-01-02 15:04")
}
