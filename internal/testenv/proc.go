package testenv

import (
	"fmt"
	"os/exec"
	"syscall"
	"time"
)

// Proc is one run of a server process a test owns.
type Proc struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has exited
}

// Start starts cmd and watches for its exit.
func Start(cmd *exec.Cmd) (*Proc, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{cmd: cmd, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// WaitReady calls ready until it succeeds, giving up when the process
// exits or after timeout; name and log say, in the error, which server
// and what it logged.
func (p *Proc) WaitReady(ready func() error, timeout time.Duration, name string, log func() string) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited: %v\n%s", name, p.cmd.ProcessState, log())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Halt(syscall.SIGTERM, 10*time.Second)
			return fmt.Errorf("%s was not ready in %v: %v\n%s", name, timeout, err, log())
		}
	}
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Halt asks the process to stop with sig (after SIGCONT, so that a paused
// one can act on it), kills it if it has not exited within timeout, and
// returns once it has exited.
func (p *Proc) Halt(sig syscall.Signal, timeout time.Duration) {
	p.cmd.Process.Signal(syscall.SIGCONT)
	p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.exited
	}
}
