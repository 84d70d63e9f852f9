package testenv

import (
	"errors"
	"fmt"
	"net"
	"os/exec"
	"sync"
	"sync/atomic"
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

// Runner owns a server process across stops and restarts, on one
// loopback port. Its methods may be called from several goroutines.
type Runner struct {
	start func(port int) (*Proc, error) // starts the server, waits until it is ready
	stop  syscall.Signal
	grace time.Duration

	// port is read without mu: the start function (which runs under mu)
	// may ask for it.
	port atomic.Int64

	mu   sync.Mutex
	proc *Proc // nil while stopped
}

// NewRunner returns a Runner that starts the server with start and stops
// it with the signal stop, killing it if it has not exited after grace.
func NewRunner(start func(port int) (*Proc, error), stop syscall.Signal, grace time.Duration) *Runner {
	return &Runner{start: start, stop: stop, grace: grace}
}

// Launch starts the server on a free loopback port. A port found free may
// be taken before the server binds it, so it tries a few.
func (r *Runner) Launch() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var err error
	for range 3 {
		var port int
		if port, err = FreePort(); err != nil {
			return err
		}
		r.port.Store(int64(port))
		if r.proc, err = r.start(port); err == nil {
			return nil
		}
	}
	return err
}

// Port is the server's port.
func (r *Runner) Port() int { return int(r.port.Load()) }

// Stop stops the server and waits for it to exit. Connections are refused
// until Restart. Stopping a stopped server does nothing.
func (r *Runner) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil {
		r.proc.Halt(r.stop, r.grace)
		r.proc = nil
	}
}

// Restart starts a stopped server again on the same port and waits until
// it is ready. Restarting a running server does nothing.
func (r *Runner) Restart() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil {
		return nil
	}
	proc, err := r.start(r.Port())
	r.proc = proc
	return err
}

// Signal sends sig to the running server.
func (r *Runner) Signal(sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return errors.New("the server is not running")
	}
	return r.proc.Signal(sig)
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
