//go:build unix

// Package pgtest starts throwaway PostgreSQL servers for tests: each is
// initdb'd into a temporary directory from the installed server binaries
// (Debian's /usr/lib/postgresql/*/bin, or $GATEHOUSE_PG_BIN), listens on a
// free loopback port and on a socket in that directory only, and is removed
// again by Close. When the tests run as root, the server runs as the
// postgres user, which initdb and postgres require.
//
// Without the binaries, tests that need a server are skipped loudly, unless
// CI=true, where they fail: CI must install the postgresql package. Start
// applies that rule for one test; a TestMain that shares one server uses
// New, Unavailable and SkipMessage to apply it for a package.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testenv"

	"github.com/jackc/pgx/v5"
)

// ErrNoBinaries is wrapped by the error of New and Binaries when no
// PostgreSQL server binaries are installed.
var ErrNoBinaries = errors.New("PostgreSQL binaries not found")

// SkipMessage is what a skipped test says.
const SkipMessage = "PostgreSQL tests SKIPPED: PostgreSQL binaries not found; install the postgresql package"

// InCI reports whether the tests run in CI (CI=true), where a missing
// PostgreSQL fails them instead of skipping them.
func InCI() bool { return testenv.InCI() }

// Server is a running throwaway PostgreSQL cluster. Its methods may be
// called from several goroutines.
type Server struct {
	*testenv.Runner // Stop, Restart, Port

	bin  string              // directory holding initdb and postgres
	dir  string              // temporary root: data/, server.log, the socket
	cred *syscall.Credential // whom initdb and postgres run as, nil for us

}

// Start starts a server for t and closes it in t.Cleanup. Without the
// binaries it skips t (saying so on stderr too), or fails it when CI=true;
// it fails t if the server does not start.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := New()
	if errors.Is(err, ErrNoBinaries) {
		testenv.Missing(t, "PostgreSQL", "postgresql", SkipMessage, err)
	}
	if err != nil {
		t.Fatalf("cannot start PostgreSQL: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Binaries returns the directory holding initdb and postgres:
// $GATEHOUSE_PG_BIN if set, else the newest of Debian's
// /usr/lib/postgresql/*/bin, else the one on PATH. Its error wraps
// ErrNoBinaries.
func Binaries() (string, error) {
	if d := os.Getenv("GATEHOUSE_PG_BIN"); d != "" {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
		return "", fmt.Errorf("%w: no initdb and postgres in GATEHOUSE_PG_BIN=%s", ErrNoBinaries, d)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(dir string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		return v
	}
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(p)
		if isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w: no initdb and postgres under /usr/lib/postgresql/*/bin or on PATH", ErrNoBinaries)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// New initdb's a cluster and starts it. Close it with Close. Its error
// wraps ErrNoBinaries when there are no binaries to run.
func New() (_ *Server, err error) {
	bin, err := Binaries()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin}
	s.Runner = testenv.NewRunner(s.start, syscall.SIGINT, 20*time.Second) // SIGINT: a fast shutdown
	s.dir, err = os.MkdirTemp("", "gatehouse-pg-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root: run them as the
		// postgres user, which Debian's package creates.
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, and %w", err)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}
		if err := os.Chown(s.dir, int(uid), int(gid)); err != nil {
			return nil, err
		}
	}
	if err := os.Chmod(s.dir, 0o700); err != nil {
		return nil, err
	}
	initdb := s.command(filepath.Join(bin, "initdb"),
		"-D", s.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	if err := s.Launch(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

// command runs name as the server's user, in its directory, with no PG*
// variables of ours leaking in.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = s.dir
	cmd.SysProcAttr = procAttr(s.cred)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") && !strings.HasPrefix(kv, "LC_") && !strings.HasPrefix(kv, "LANG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "LC_ALL=C")
	return cmd
}

// start starts postgres on port and waits until it accepts connections.
func (s *Server) start(port int) (*testenv.Proc, error) {
	log, err := os.OpenFile(filepath.Join(s.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd := s.command(filepath.Join(s.bin, "postgres"), "-D", s.data(),
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+s.dir,
		// A test cluster: durability is not the point, speed is.
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=200",
		"-c", "shared_buffers=64MB",
		"-c", "max_parallel_workers_per_gather=0",
		"-c", "log_min_messages=warning",
	)
	cmd.Stdout, cmd.Stderr = log, log
	proc, err := testenv.Start(cmd)
	if err != nil {
		return nil, err
	}
	accepts := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, s.DSN("postgres"))
		if err == nil {
			conn.Close(ctx)
		}
		return err
	}
	return proc, proc.WaitReady(accepts, 60*time.Second, "postgres", s.Log)
}

// Close stops the server and removes its directory.
func (s *Server) Close() {
	s.Stop()
	os.RemoveAll(s.dir)
}

// Log returns the server's log so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	return string(b)
}

// DSN is the URL of database db on the server, as the superuser.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port(), db)
}

// CreateDatabase creates the empty database name (UTF8, from template0)
// and returns its DSN.
func (s *Server) CreateDatabase(name string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()+` TEMPLATE template0`); err != nil {
		return "", fmt.Errorf("CREATE DATABASE %s: %w", name, err)
	}
	return s.DSN(name), nil
}
