//go:build unix && !linux

package pgtest

import "syscall"

// procAttr runs a server process as cred (if not nil).
func procAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred}
}
