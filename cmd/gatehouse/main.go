// Command gatehouse is the gatehouse API gateway and its command-line
// client:
//
//	gatehouse serve [flags]        run the admin API and the proxy (--role all),
//	                               or one of them (--role control, --role data)
//	gatehouse config ...           configuration as code: validate, dump, diff,
//	                               apply, sync, convert
//	gatehouse deploy | rollback    deploy the draft, or an earlier revision
//	gatehouse status               the active revision, nodes, deployments
//	gatehouse version              print the version
//	gatehouse completion SHELL     a shell completion script
//
// Exit codes: 0 success; 1 an error (a usage error included); 2 drift
// found by config diff; 3 something config convert could not convert.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

func main() {
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes of the commands.
const (
	exitOK      = 0
	exitError   = 1 // any failure, a usage error included
	exitDrift   = 2 // config diff: the draft differs from the files
	exitDropped = 3 // config convert: something could not be converted
)

// exitStatus ends a command with code. Its error, if any, is printed like
// any other; a nil one means the command already said what happened.
type exitStatus struct {
	code int
	err  error
}

func (e *exitStatus) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitStatus) Unwrap() error { return e.err }

// reported is a failure the command has printed already: exit 1, no
// further message.
var reported = &exitStatus{code: exitError}

// usageError is a command line that does not parse: it is printed with a
// pointer to the command's help.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// execute runs the command line args and returns the exit code.
func execute(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	var st *exitStatus
	if errors.As(err, &st) {
		if st.err != nil {
			fmt.Fprintln(stderr, "gatehouse:", st.err)
		}
		return st.code
	}
	fmt.Fprintln(stderr, "gatehouse:", err)
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return exitError
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "gatehouse",
		Short: "The gatehouse API gateway and its command-line client",
		Long: `gatehouse is an API gateway (gatehouse serve) and the client of its admin
API: configuration as code (gatehouse config), deployments and the cluster's
state.

Commands that talk to the admin API take --admin-url (default
http://127.0.0.1:9080, or GATEHOUSE_ADMIN_URL) and an admin token from
GATEHOUSE_ADMIN_TOKEN or --token-file (such as <data-dir>/admin-token, which
serve writes on its first start).

Exit codes: 0 success; 1 an error (a usage error included); 2 drift found by
"config diff"; 3 something "config convert" could not convert.`,
		Version:       buildVersion(),
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	needsCommand(root)
	// A group runs only to say that it needs a command: its usage shows
	// "gatehouse config [command]", not a line of its own.
	root.SetUsageTemplate(strings.Replace(root.UsageTemplate(),
		"Usage:{{if .Runnable}}", "Usage:{{if and .Runnable (not .HasAvailableSubCommands)}}", 1))
	root.SetVersionTemplate("gatehouse {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err.Error()} })
	root.AddGroup(&cobra.Group{ID: "server", Title: "Running the gateway:"},
		&cobra.Group{ID: "client", Title: "Managing a gateway through its admin API:"})
	root.SetHelpCommandGroupID("")
	for _, c := range []*cobra.Command{newServeCmd()} {
		c.GroupID = "server"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{newConfigCmd(), newDeployCmd(), newRollbackCmd(), newRevisionsCmd(), newStatusCmd()} {
		c.GroupID = "client"
		root.AddCommand(c)
	}
	root.AddCommand(newVersionCmd())
	return root
}

// needsCommand makes cmd, a group of commands, answer a missing or unknown
// subcommand with its usage and a usage error (exit 1), rather than
// cobra's default for a command that does nothing itself: its help and
// success, which would let a typo in a script pass.
func needsCommand(cmd *cobra.Command) {
	cmd.SuggestionsMinimumDistance = 2
	cmd.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		return &usageError{msg}
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		fmt.Fprint(cmd.ErrOrStderr(), cmd.UsageString())
		if !cmd.HasParent() {
			return usagef("a command is needed")
		}
		return usagef("%s needs a command", cmd.Name())
	}
}

// exactArgs is cobra.ExactArgs reporting a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return &usageError{err.Error()}
		}
		return nil
	}
}

// minArgs is cobra.MinimumNArgs reporting a usage error.
func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.MinimumNArgs(n)(cmd, args); err != nil {
			return &usageError{err.Error()}
		}
		return nil
	}
}

// noArgs is cobra.NoArgs reporting a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if err := cobra.NoArgs(cmd, args); err != nil {
		return &usageError{err.Error()}
	}
	return nil
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  noArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "gatehouse", buildVersion())
		},
	}
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
