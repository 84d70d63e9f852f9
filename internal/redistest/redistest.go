//go:build unix

// Package redistest starts throwaway Redis servers for tests: each is an
// installed redis-server (Debian's /usr/bin/redis-server, or
// $GATEHOUSE_REDIS_SERVER) listening on a free loopback port, keeping
// nothing on disk (no RDB snapshots, no append-only file), and is stopped
// and its directory removed again by Close. Stop and Restart simulate an
// outage; as nothing is persisted, a restarted server starts empty.
//
// Without the binary, tests that need a server are skipped loudly, unless
// CI=true, where they fail: CI must install the redis-server package.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testenv"
)

// ErrNoBinary is wrapped by the error of New and Binary when no
// redis-server is installed.
var ErrNoBinary = errors.New("redis-server not found")

// SkipMessage is what a skipped test says.
const SkipMessage = "Redis tests SKIPPED: redis-server not found; install the redis-server package"

// InCI reports whether the tests run in CI (CI=true), where a missing
// redis-server fails them instead of skipping them.
func InCI() bool { return testenv.InCI() }

// Server is a running throwaway Redis server. Its methods may be called
// from several goroutines.
type Server struct {
	*testenv.Runner // Stop, Restart, Port

	bin string
	dir string // temporary root: the server's working directory and log
}

// Start starts a server for t and closes it in t.Cleanup. Without the
// binary it skips t (saying so on stderr too), or fails it when CI=true;
// it fails t if the server does not start.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := New()
	if errors.Is(err, ErrNoBinary) {
		testenv.Missing(t, "Redis", "redis-server", SkipMessage, err)
	}
	if err != nil {
		t.Fatalf("cannot start Redis: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Binary returns the path of redis-server: $GATEHOUSE_REDIS_SERVER if
// set, else /usr/bin/redis-server, else the one on PATH. Its error wraps
// ErrNoBinary.
func Binary() (string, error) {
	if p := os.Getenv("GATEHOUSE_REDIS_SERVER"); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("%w: GATEHOUSE_REDIS_SERVER=%s is not an executable", ErrNoBinary, p)
	}
	if isExecutable("/usr/bin/redis-server") {
		return "/usr/bin/redis-server", nil
	}
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w: not at /usr/bin/redis-server nor on PATH", ErrNoBinary)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// New starts a server. Close it with Close. Its error wraps ErrNoBinary
// when there is no redis-server to run.
func New() (_ *Server, err error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin}
	// SIGTERM: a paused server gets SIGCONT first (Proc.Halt).
	s.Runner = testenv.NewRunner(s.start, syscall.SIGTERM, 10*time.Second)
	if s.dir, err = os.MkdirTemp("", "gatehouse-redis-"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := s.Launch(); err != nil {
		return nil, err
	}
	return s, nil
}

// start starts redis-server on port and waits until it answers PING.
func (s *Server) start(port int) (*testenv.Proc, error) {
	log, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		// A test server: nothing is kept, so a restart starts empty.
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--daemonize", "no",
		"--loglevel", "warning",
	)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = procAttr()
	proc, err := testenv.Start(cmd)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	return proc, proc.WaitReady(func() error { return ping(addr) }, 20*time.Second, "redis-server", s.Log)
}

// ping sends one PING in the protocol's inline form and expects +PONG.
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// Pause freezes the server (SIGSTOP): connections are accepted by the
// kernel but nothing is answered, as when Redis hangs. Resume undoes it;
// Close resumes a paused server first.
func (s *Server) Pause() error { return s.Signal(syscall.SIGSTOP) }

// Resume lets a paused server run again.
func (s *Server) Resume() error { return s.Signal(syscall.SIGCONT) }

// Close stops the server and removes its directory.
func (s *Server) Close() {
	s.Stop()
	os.RemoveAll(s.dir)
}

func (s *Server) logPath() string { return filepath.Join(s.dir, "redis.log") }

// Log returns the server's log so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath())
	return string(b)
}

// Addr is the server's address, 127.0.0.1:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port())) }

// URL is the server's redis:// URL, as --redis-url takes it.
func (s *Server) URL() string { return "redis://" + s.Addr() }
