package tunnel

import (
	"io"
	"net"
	"testing"
)

// pair returns the two ends of a loopback TCP connection.
func pair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// A client that half-closes after its request still gets the whole
// answer: the join passes the half-close on instead of closing.
func TestJoinPassesAHalfCloseOnAndTheOtherDirectionFinishes(t *testing.T) {
	client, joinA := pair(t)
	joinB, server := pair(t)
	var up, down int64
	joined := make(chan struct{})
	go func() {
		defer close(joined)
		up, down = Join(End{R: joinA, C: joinA}, End{R: joinB, C: joinB})
	}()
	client.Write([]byte("request"))
	client.CloseWrite()
	got, err := io.ReadAll(server) // ends at the half-close passed on
	if err != nil || string(got) != "request" {
		t.Fatalf("server read %q, %v; want request, then EOF", got, err)
	}
	server.Write([]byte("the answer"))
	server.CloseWrite()
	got, err = io.ReadAll(client)
	if err != nil || string(got) != "the answer" {
		t.Fatalf("client read %q, %v; want the answer after its half-close", got, err)
	}
	<-joined
	if up != 7 || down != 10 {
		t.Fatalf("counted %d up, %d down; want 7, 10", up, down)
	}
}

func TestClosingTheSetEndsItsTunnelsAndRefusesNewOnes(t *testing.T) {
	client, joinA := pair(t)
	joinB, _ := pair(t)
	var s Set
	if !s.Add(joinA, joinB) {
		t.Fatal("Add refused before Close")
	}
	if n := s.Open(); n != 1 {
		t.Fatalf("Open() = %d after one Add of a tunnel's two connections; want 1", n)
	}
	joined := make(chan struct{})
	go func() {
		defer close(joined)
		Join(End{R: joinA, C: joinA}, End{R: joinB, C: joinB})
	}()
	s.Close()
	<-joined
	if _, err := io.ReadAll(client); err != nil {
		t.Fatalf("client: %v", err)
	}
	s.Remove(joinA, joinB) // as the tunnel's owner does once it ends
	if n := s.Open(); n != 0 {
		t.Fatalf("Open() = %d after Close and Remove; want 0", n)
	}
	if s.Add(joinA) {
		t.Fatal("Add accepted after Close")
	}
}

func TestOpenCountsTunnelsUntilTheirRemove(t *testing.T) {
	a, b := pair(t)
	c, d := pair(t)
	var s Set
	s.Add(a, b)
	s.Add(c, d)
	s.Remove(a, b)
	if n := s.Open(); n != 1 {
		t.Fatalf("Open() = %d after two Adds and one Remove; want 1", n)
	}
}
