//go:build linux

package redistest

import "syscall"

// procAttr has the kernel end the server should the test binary die
// without stopping it.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
