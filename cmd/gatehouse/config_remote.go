package main

// gatehouse config dump, diff, apply and sync: the commands that compare
// files with the admin API's draft and change it.

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/gatehouse/gatehouse/client"
	"github.com/gatehouse/gatehouse/config"
	"github.com/spf13/cobra"
)

func newDumpCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dump [-o FILE]",
		Short: "Write the draft configuration as a file",
		Long: `Write the admin API's draft configuration (with --select-tag, the part
carrying every selected tag) as a document that validate, diff, apply and sync
take back. Credentials' secrets are never dumped: applying a credential
without one keeps the stored secret.`,
		Args: noArgs,
	}
	cf := addClientFlags(cmd)
	tags := addSelectTags(cmd)
	var out, format string
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to this file instead of standard output")
	cmd.Flags().StringVar(&format, "format", "", "yaml or json (default: json for an --output ending in .json, else yaml)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		switch format {
		case "":
			format = "yaml"
			if strings.EqualFold(filepath.Ext(out), ".json") {
				format = "json"
			}
		case "yaml", "json":
		default:
			return usagef("--format must be yaml or json, not %q", format)
		}
		c, err := cf.client(cmd)
		if err != nil {
			return err
		}
		body, _, err := c.DumpConfig(cmd.Context(), *tags, format == "yaml")
		if err != nil {
			return cf.fail(cmd, err)
		}
		if len(body) > 0 && body[len(body)-1] != '\n' {
			body = append(body, '\n')
		}
		// A dump holds no secrets: a file to keep in git.
		if err := writeOutput(cmd, out, body, 0o644); err != nil {
			return err
		}
		if out != "" {
			fmt.Fprintf(cmd.ErrOrStderr(), "Wrote the draft to %s.\n", out)
		}
		return nil
	}
	return cmd
}

func newDiffCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "diff FILE|DIR...",
		Short: "Show what sync would change (exit 0: no drift, 2: drift, 1: error)",
		Long: `Show how the admin API's draft differs from the files: what "config sync" would
create (+), update (~, with each field's value before and after) and delete
(-). The server computes it without writing anything, with the checks of a
real sync.

Exit status: 0 if the draft matches the files, 2 if it differs, 1 on an error
(an invalid file included), so that CI can gate on it.`,
		Args: minArgs(1),
	}
	cf := addClientFlags(cmd)
	tags := addSelectTags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		shown, err := showPlan(cmd, cf, args, client.ConfigOptions{Sync: true, DryRun: true, SelectTags: *tags})
		if err != nil {
			return err
		}
		if changeCount(shown.changes) > 0 {
			return &exitStatus{code: exitDrift}
		}
		return nil
	}
	return cmd
}

// newApplyCmd is config apply or, with sync, config sync.
func newApplyCmd(sync bool) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apply FILE|DIR...",
		Short: "Create and update what the files hold",
		Long: `Create and update the resources the files hold, in one transaction: all of it
or none. Resources the files do not hold are left alone (see sync).`,
		Args: minArgs(1),
	}
	if sync {
		cmd.Use = "sync FILE|DIR..."
		cmd.Short = "Make the draft what the files hold, deleting what they lack"
		cmd.Long = `Make the draft what the files hold, in one transaction: create and update
their resources, and delete those they no longer hold (with --select-tag, only
among the resources carrying every selected tag).`
	}
	cmd.Long += `

The change set is computed first and shown; then exactly that change is made,
on condition that the draft has not changed in between (If-Match): if it has,
nothing is changed and the command asks to be run again. --dry-run stops after
showing it. --deploy then deploys the draft, and --wait waits for the
deployment to finish on every node.`
	cf := addClientFlags(cmd)
	tags := addSelectTags(cmd)
	var dryRun bool
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show the changes without making them")
	df := addDeployFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if dryRun && df.deploy {
			return usagef("--dry-run and --deploy exclude each other")
		}
		if df.wait && !df.deploy {
			return usagef("--wait needs --deploy")
		}
		opts := client.ConfigOptions{Sync: sync, DryRun: true, SelectTags: *tags}
		shown, err := showPlan(cmd, cf, args, opts)
		if err != nil {
			return err
		}
		if dryRun {
			return nil
		}
		if changeCount(shown.changes) > 0 {
			// Exactly what was shown is applied: the change is refused if
			// the draft it was computed against has changed since.
			opts.DryRun, opts.IfMatch = false, shown.changes.Draft
			if opts.IfMatch == "" {
				return errors.New("the server did not say which draft the changes were computed against; nothing was applied")
			}
			done, err := shown.client.ApplyConfig(cmd.Context(), shown.body, opts)
			var p *client.Problem
			if errors.As(err, &p) && p.Status == http.StatusPreconditionFailed {
				return errors.New("the draft changed meanwhile, so nothing was applied; run again to see the changes against it")
			}
			if err != nil {
				cf.printError(cmd.ErrOrStderr(), err, locatedField(shown.src))
				return reported
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Applied:", summaryLine(done))
		}
		if df.deploy {
			return df.run(cmd, cf, shown.client, deployRequest())
		}
		return nil
	}
	return cmd
}

// plan is the change set the files make against the draft, with what
// made it: the files, the body sent, the client that sent it.
type plan struct {
	src     *config.Source
	body    []byte
	client  *client.Client
	changes *config.ChangeSet
}

// showPlan reads the files, sends them as a dry run with opts and prints
// the change set and its summary; a problem with the files or the
// server's answer is printed, placed in the files, and reported.
func showPlan(cmd *cobra.Command, cf *clientFlags, args []string, opts client.ConfigOptions) (*plan, error) {
	src, _, ok := loadDocument(cmd.ErrOrStderr(), args)
	if !ok {
		return nil, reported
	}
	body, err := documentBody(src)
	if err != nil {
		return nil, err
	}
	c, err := cf.client(cmd)
	if err != nil {
		return nil, err
	}
	cs, err := c.ApplyConfig(cmd.Context(), body, opts)
	if err != nil {
		cf.printError(cmd.ErrOrStderr(), err, locatedField(src))
		return nil, reported
	}
	printChangeSet(cmd.OutOrStdout(), cs, placeIn(src))
	fmt.Fprintln(cmd.OutOrStdout(), summaryLine(cs))
	return &plan{src: src, body: body, client: c, changes: cs}, nil
}

// placeIn gives an entry's place in the files from its pointer.
func placeIn(src *config.Source) func(string) string {
	return func(pointer string) string {
		return src.Locate(config.Problem{Pointer: pointer}).Pos.String()
	}
}

// addDeployFlags gives apply and sync --deploy and the waiting flags.
func addDeployFlags(cmd *cobra.Command) *deployFlags {
	df := addWaitFlags(cmd)
	cmd.Flags().BoolVar(&df.deploy, "deploy", false, "deploy the draft once the change is made")
	return df
}
