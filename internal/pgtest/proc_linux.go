//go:build unix

package pgtest

import "syscall"

// procAttr runs a server process as cred (if not nil), and has the kernel
// end it should the test binary die without stopping it. Pdeathsig is set
// after the credentials change, so it survives it.
func procAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	// SIGQUIT is PostgreSQL's immediate shutdown: it ends its children too.
	return &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
}
