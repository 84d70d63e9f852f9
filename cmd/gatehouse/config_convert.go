package main

// gatehouse config convert: another gateway's configuration turned into
// gatehouse's format.

import (
	"fmt"
	"os"

	"github.com/gatehouse/gatehouse/config"
	"github.com/gatehouse/gatehouse/config/kong"
	"github.com/spf13/cobra"
)

func newConvertCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "convert --from kong FILE [-o OUT]",
		Short: "Convert a Kong declarative configuration (exit 3 if anything was dropped)",
		Long: `Convert a Kong declarative configuration (kong.yml, formats 1.1, 2.1 and 3.0)
into gatehouse's format, written as YAML to OUT or standard output.

Whatever cannot be converted, or converts with a difference you must know of,
is listed on standard error with its place in the input and why; the rest is
still written, and the exit status is 3.`,
		Args: exactArgs(1),
	}
	var from, out string
	cmd.Flags().StringVar(&from, "from", "", "the input's format: kong")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to this file instead of standard output")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if from != "kong" {
			if from == "" {
				return usagef("--from is required: kong")
			}
			return usagef("--from %q: only kong is supported", from)
		}
		data, err := os.ReadFile(args[0])
		if err != nil {
			return err
		}
		doc, dropped, err := kong.Convert(data, args[0])
		if err != nil {
			return err
		}
		y, err := config.Encode(doc, true)
		if err != nil {
			return err
		}
		// The output holds the credentials' hashes: private to its owner.
		if err := writeOutput(cmd, out, y, 0o600); err != nil {
			return err
		}
		stderr := cmd.ErrOrStderr()
		for _, d := range dropped {
			at := d.Pos.String()
			if at == "" {
				at = args[0]
			}
			fmt.Fprintf(stderr, "%s: %s: %s: %s\n", at, d.Path, d.What, d.Why)
		}
		if len(dropped) > 0 {
			fmt.Fprintf(stderr, "%s above not converted, or converted with a difference; the rest was written.\n", plural(len(dropped), "item"))
			return &exitStatus{code: exitDropped}
		}
		return nil
	}
	return cmd
}
