package main

// gatehouse deploy and rollback, and waiting for a deployment while
// showing each node's progress.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/client"
	"github.com/spf13/cobra"
)

// deployFlags are --deploy and --wait of apply and sync, and --wait of
// deploy and rollback.
type deployFlags struct {
	deploy      bool
	wait        bool
	waitTimeout time.Duration
}

// addWaitFlags gives cmd --wait and --wait-timeout.
func addWaitFlags(cmd *cobra.Command) *deployFlags {
	df := &deployFlags{}
	cmd.Flags().BoolVar(&df.wait, "wait", false, "wait until the deployment succeeds or fails on every node, showing each node's progress")
	cmd.Flags().DurationVar(&df.waitTimeout, "wait-timeout", 5*time.Minute, "how long --wait waits at most")
	return df
}

// pollInterval is how often --wait reads the deployment.
const pollInterval = 200 * time.Millisecond

func newDeployCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deploy [--wait]",
		Short: "Deploy the draft configuration as a new revision",
		Long: `Snapshot the draft configuration into a new numbered revision and deploy it to
every data node. The server answers at once and deploys in the background;
--wait follows the deployment, printing each node's progress, until it
succeeds or fails (exit 1, with the reason).`,
		Args: noArgs,
	}
	cf := addClientFlags(cmd)
	df := addWaitFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := cf.client(cmd)
		if err != nil {
			return err
		}
		return df.run(cmd, cf, c, deployRequest())
	}
	return cmd
}

func newRollbackCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollback REVISION [--wait]",
		Short: "Deploy an earlier revision again",
		Long: `Deploy an earlier revision again, by its number (see gatehouse status). The
draft is left as it is. --wait follows the deployment until it succeeds or
fails (exit 1, with the reason).`,
		Args: exactArgs(1),
	}
	cf := addClientFlags(cmd)
	df := addWaitFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		n, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil || n < 1 {
			return usagef("REVISION must be a revision number (1 or more), not %q", args[0])
		}
		c, err := cf.client(cmd)
		if err != nil {
			return err
		}
		return df.run(cmd, cf, c, &gatehouse.Deployment{Action: gatehouse.ActionRollback, Revision: n})
	}
	return cmd
}

// deployRequest is the body of a deploy of the draft.
func deployRequest() *gatehouse.Deployment {
	return &gatehouse.Deployment{Action: gatehouse.ActionDeploy}
}

// run creates the deployment and, with --wait, follows it to its end.
func (df *deployFlags) run(cmd *cobra.Command, cf *clientFlags, c *client.Client, req *gatehouse.Deployment) error {
	out := cmd.OutOrStdout()
	dep, err := c.CreateDeployment(cmd.Context(), req)
	if err != nil {
		return cf.fail(cmd, err)
	}
	fmt.Fprintf(out, "Deployment %s: %s, %s.\n", dep.ID, describeDeployment(dep), dep.State)
	if !df.wait {
		return nil
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), df.waitTimeout)
	defer cancel()
	dep, err = waitDeployment(ctx, c, dep, out)
	if errors.Is(err, context.DeadlineExceeded) && cmd.Context().Err() == nil {
		return fmt.Errorf("deployment %s is still %s after %v; see gatehouse status", dep.ID, dep.State, df.waitTimeout)
	}
	if err != nil {
		return cf.fail(cmd, err)
	}
	if dep.State == gatehouse.StateFailed {
		return reported // waitDeployment printed the reason
	}
	return nil
}

// describeDeployment says what a deployment does: "deploy of revision 3".
func describeDeployment(d *gatehouse.Deployment) string {
	switch d.Action {
	case gatehouse.ActionUndeploy:
		return "undeploy"
	case gatehouse.ActionRollback:
		return fmt.Sprintf("rollback to revision %d", d.Revision)
	}
	return fmt.Sprintf("deploy of revision %d", d.Revision)
}

// waitDeployment polls dep until it succeeds or fails, printing to w each
// change of its state and of each node's progress. It returns the last
// deployment read, also with an error (the context's when it ends).
func waitDeployment(ctx context.Context, c *client.Client, dep *gatehouse.Deployment, w io.Writer) (*gatehouse.Deployment, error) {
	state := dep.State
	nodes := map[string]string{}
	report := func(d *gatehouse.Deployment) {
		for _, n := range d.Nodes {
			line := n.State
			if n.Error != "" {
				line += ": " + n.Error
			}
			if nodes[n.Node] != line {
				nodes[n.Node] = line
				fmt.Fprintf(w, "  node %s: %s\n", n.Node, line)
			}
		}
		if d.State != state {
			state = d.State
			switch d.State {
			case gatehouse.StateSucceeded:
				fmt.Fprintf(w, "Deployment %s succeeded: %s.\n", d.ID, servedNow(d))
			case gatehouse.StateFailed:
				fmt.Fprintf(w, "Deployment %s failed: %s\n", d.ID, orUnknown(d.Reason))
			default:
				fmt.Fprintf(w, "Deployment %s: %s.\n", d.ID, d.State)
			}
		}
	}
	report(dep)
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for !finished(dep) {
		select {
		case <-ctx.Done():
			return dep, ctx.Err()
		case <-t.C:
		}
		d, err := c.Deployment(ctx, dep.ID)
		if err != nil {
			return dep, err
		}
		dep = d
		report(dep)
	}
	return dep, nil
}

func finished(d *gatehouse.Deployment) bool {
	return d.State == gatehouse.StateSucceeded || d.State == gatehouse.StateFailed
}

// servedNow says what a succeeded deployment left serving.
func servedNow(d *gatehouse.Deployment) string {
	if d.Action == gatehouse.ActionUndeploy || d.Revision == 0 {
		return "the empty configuration is served"
	}
	if len(d.Nodes) == 0 {
		return fmt.Sprintf("revision %d is active (no data node is live; nodes that start will serve it)", d.Revision)
	}
	return fmt.Sprintf("revision %d is served by %s", d.Revision, plural(len(d.Nodes), "node"))
}
