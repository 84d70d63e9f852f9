package main

// The flags of the commands that talk to the admin API, and how their
// errors are printed.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/client"
	"github.com/spf13/cobra"
)

// defaultAdminURL is serve's default --admin-addr as a URL.
const defaultAdminURL = "http://127.0.0.1:9080"

// clientFlags are the flags of a command that talks to the admin API.
type clientFlags struct {
	adminURL  string
	tokenFile string
	timeout   time.Duration
	// token is where the token came from, for the hint of a 401.
	token string
}

// addClientFlags gives cmd the admin API's flags.
func addClientFlags(cmd *cobra.Command) *clientFlags {
	f := &clientFlags{}
	fs := cmd.Flags()
	fs.StringVar(&f.adminURL, "admin-url", defaultAdminURL, "base URL of the admin API; GATEHOUSE_ADMIN_URL if not given")
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding the admin token, such as serve's <data-dir>/admin-token (default: the token in GATEHOUSE_ADMIN_TOKEN)")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "limit on each request to the admin API")
	return f
}

// client builds the admin API client of cmd's flags: the URL from
// --admin-url, or GATEHOUSE_ADMIN_URL if the flag is not given; the token
// from --token-file if given, or GATEHOUSE_ADMIN_TOKEN.
func (f *clientFlags) client(cmd *cobra.Command) (*client.Client, error) {
	u := f.adminURL
	if v := os.Getenv("GATEHOUSE_ADMIN_URL"); v != "" && !cmd.Flags().Changed("admin-url") {
		u = v
	}
	token, err := f.readToken()
	if err != nil {
		return nil, err
	}
	c, err := client.New(u, token, f.timeout)
	if err != nil {
		return nil, err
	}
	c.UserAgent = "gatehouse-cli/" + buildVersion()
	return c, nil
}

func (f *clientFlags) readToken() (string, error) {
	if f.tokenFile == "" {
		f.token = "GATEHOUSE_ADMIN_TOKEN"
		return strings.TrimSpace(os.Getenv("GATEHOUSE_ADMIN_TOKEN")), nil
	}
	b, err := os.ReadFile(f.tokenFile)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	// The file serve writes ends with a newline.
	tok := strings.TrimSpace(string(b))
	if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("--token-file %s: want one token on one line", f.tokenFile)
	}
	f.token = "--token-file " + f.tokenFile
	return tok, nil
}

// printError prints a command's error: a problem from the admin API as
// its lines (each field through where, if not nil), with a hint where the
// cause is likely the command's own settings; anything else on one line.
func (f *clientFlags) printError(w io.Writer, err error, where func(client.FieldError) string) {
	var p *client.Problem
	if !errors.As(err, &p) {
		fmt.Fprintln(w, "gatehouse:", err)
		if ne := (*net.OpError)(nil); errors.As(err, &ne) && ne.Op == "dial" {
			fmt.Fprintln(w, "hint: is gatehouse serve running there? The admin API's address is --admin-url or GATEHOUSE_ADMIN_URL")
		}
		return
	}
	p.Print(w, where)
	switch p.Status {
	case http.StatusUnauthorized:
		if f.token == "GATEHOUSE_ADMIN_TOKEN" && os.Getenv("GATEHOUSE_ADMIN_TOKEN") == "" {
			fmt.Fprintln(w, "hint: no admin token was sent: set GATEHOUSE_ADMIN_TOKEN or give --token-file (serve writes <data-dir>/admin-token)")
		} else {
			fmt.Fprintf(w, "hint: the admin token from %s was refused\n", f.token)
		}
	case http.StatusNotFound:
		if strings.HasPrefix(p.Instance, client.Prefix+"/config") {
			fmt.Fprintln(w, "hint: this server has no /admin/v1/config: is --admin-url a gatehouse admin API of this version?")
		}
	}
}

// fail prints err and returns the error that ends the command with 1.
func (f *clientFlags) fail(cmd *cobra.Command, err error) error {
	f.printError(cmd.ErrOrStderr(), err, nil)
	return reported
}
