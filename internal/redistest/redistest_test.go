//go:build unix

package redistest

import (
	"net"
	"testing"
	"time"
)

func TestServerStopsAndRestartsOnTheSamePort(t *testing.T) {
	s := Start(t)
	addr := s.Addr()
	if err := ping(addr); err != nil {
		t.Fatalf("PING after Start: %v", err)
	}
	s.Stop()
	if err := ping(addr); err == nil {
		t.Fatal("PING answered after Stop; want the connection refused")
	}
	s.Stop() // stopping a stopped server does nothing
	if err := s.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if s.Addr() != addr {
		t.Fatalf("restarted at %s; want %s", s.Addr(), addr)
	}
	if err := ping(addr); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
}

func TestPausedServerAcceptsButDoesNotAnswer(t *testing.T) {
	s := Start(t)
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		t.Fatalf("dial while paused: %v; want the kernel to accept", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(100 * time.Millisecond))
	conn.Write([]byte("PING\r\n"))
	if n, err := conn.Read(make([]byte, 16)); err == nil {
		t.Fatalf("read %d bytes from a paused server; want a timeout", n)
	}
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := ping(s.Addr()); err != nil {
		t.Fatalf("PING after Resume: %v", err)
	}
}
