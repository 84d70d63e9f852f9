package h1

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/gatehouse/gatehouse"
)

// TestChunkedReaderDecodesValidBodies: the accepted shapes, and that not a
// byte after the body's end is consumed.
func TestChunkedReaderDecodesValidBodies(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello"},
		{"several chunks", "5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n", "hello world"},
		{"empty body", "0\r\n\r\n", ""},
		{"upper and lower-case hex", "A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n", "01234567890123456789"},
		{"leading zeros in a size", "0005\r\nhello\r\n000\r\n\r\n", "hello"},
		{"sixteen hex digits", "0000000000000005\r\nhello\r\n0\r\n\r\n", "hello"},
		{"an extension without a value", "5;x\r\nhello\r\n0\r\n\r\n", "hello"},
		{"extensions with token and quoted values", "5;a=b;c=\"d; \\\"e\\\"\"\r\nhello\r\n0;z\r\n\r\n", "hello"},
		{"whitespace around an extension's parts", "5; a = b ;c\r\nhello\r\n0\r\n\r\n", "hello"},
		{"trailer fields are read", "5\r\nhello\r\n0\r\nX-Sum: 1\r\nX-Other:2 \r\n\r\n", "hello"},
		{"chunk line of 4096 bytes", "5;" + strings.Repeat("a", 4096-4) + "\r\nhello\r\n0\r\n\r\n", "hello"},
		{"data holding CRLF", "4\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, reader := range []struct {
				name string
				wrap func(io.Reader) io.Reader
			}{{"whole", func(r io.Reader) io.Reader { return r }}, {"byte by byte", iotest.OneByteReader}} {
				br := bufio.NewReader(reader.wrap(strings.NewReader(tt.body + "GET / HTTP/1.1\r\n")))
				var c ChunkedReader
				c.Reset(br)
				got, err := io.ReadAll(&c)
				if err != nil {
					t.Fatalf("%s: %v", reader.name, err)
				}
				if string(got) != tt.want {
					t.Errorf("%s: decoded %q; want %q", reader.name, got, tt.want)
				}
				rest, _ := io.ReadAll(br)
				if string(rest) != "GET / HTTP/1.1\r\n" {
					t.Errorf("%s: left %q for the next request; want the request intact", reader.name, rest)
				}
			}
		})
	}
}

// TestChunkedReaderKeepsTheTrailerUntilReset: the trailer's fields, as
// sent and in order, once the body has ended; none before, and none for
// the next body, though the connection's buffer has moved on.
func TestChunkedReaderKeepsTheTrailerUntilReset(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"no trailer", "5\r\nhello\r\n0\r\n\r\n", ""},
		{"one field", "5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n", "X-Sum=1;"},
		{"fields in order, names as sent, values trimmed",
			"0\r\nx-sum:\t1 \r\nX-Other:2\r\nx-sum: 3\r\nEmpty:\r\n\r\n", "x-sum=1;X-Other=2;x-sum=3;Empty=;"},
		{"a field filling the trailer section", "0\r\nX: " + strings.Repeat("v", maxTrailer-9) + "\r\n\r\n",
			"X=" + strings.Repeat("v", maxTrailer-9) + ";"},
	}
	render := func(fs []Field) string {
		var b strings.Builder
		for _, f := range fs {
			b.WriteString(string(f.Name) + "=" + string(f.Value) + ";")
		}
		return b.String()
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, reader := range []struct {
				name string
				wrap func(io.Reader) io.Reader
			}{{"whole", func(r io.Reader) io.Reader { return r }}, {"byte by byte", iotest.OneByteReader}} {
				next := "2\r\nok\r\n0\r\n\r\n"
				br := bufio.NewReaderSize(reader.wrap(strings.NewReader(tt.body+strings.Repeat("z", 8192))), 4096)
				var c ChunkedReader
				c.Reset(br)
				buf := make([]byte, 1)
				var err error
				for err == nil {
					if got := render(c.Trailer()); got != "" {
						t.Fatalf("%s: trailer %q before the body's end", reader.name, got)
					}
					_, err = c.Read(buf)
				}
				if err != io.EOF {
					t.Fatalf("%s: %v", reader.name, err)
				}
				// The buffer is overwritten by what follows the body.
				fs := c.Trailer()
				io.Copy(io.Discard, br)
				if got := render(fs); got != tt.want {
					t.Errorf("%s: trailer %q; want %q", reader.name, got, tt.want)
				}
				c.Reset(bufio.NewReader(strings.NewReader(next)))
				if _, err := io.ReadAll(&c); err != nil {
					t.Fatal(err)
				}
				if got := render(c.Trailer()); got != "" {
					t.Errorf("%s: the next body's trailer is %q; want none", reader.name, got)
				}
			}
		})
	}
}

// TestChunkedReaderRefusesMalformedBodies: each encoding error is EINVALID,
// a body cut short io.ErrUnexpectedEOF.
func TestChunkedReaderRefusesMalformedBodies(t *testing.T) {
	tests := []struct{ name, body string }{
		{"empty size", "\r\nhello\r\n0\r\n\r\n"},
		{"signed size", "+5\r\nhello\r\n0\r\n\r\n"},
		{"negative size", "-5\r\nhello\r\n0\r\n\r\n"},
		{"hex prefix", "0x5\r\nhello\r\n0\r\n\r\n"},
		{"leading space", " 5\r\nhello\r\n0\r\n\r\n"},
		{"space after the size", "5 \r\nhello\r\n0\r\n\r\n"},
		{"space before an extension", "5 ;x\r\nhello\r\n0\r\n\r\n"},
		{"seventeen hex digits", "00000000000000005\r\nhello\r\n0\r\n\r\n"},
		{"size past 2^63-1", "8000000000000000\r\nhello\r\n0\r\n\r\n"},
		{"bare LF after the size", "5\nhello\r\n0\r\n\r\n"},
		{"CR inside the size line", "5\r;x\r\nhello\r\n0\r\n\r\n"},
		{"bare LF after the data", "5\r\nhello\n0\r\n\r\n"},
		{"data longer than the size", "5\r\nhello!\r\n0\r\n\r\n"},
		{"no CRLF after the data", "5\r\nhelloXY0\r\n\r\n"},
		{"extension without a name", "5;\r\nhello\r\n0\r\n\r\n"},
		{"extension with an empty value", "5;a=\r\nhello\r\n0\r\n\r\n"},
		{"extension with a non-token name", "5;a(b\r\nhello\r\n0\r\n\r\n"},
		{"extension with an open quote", "5;a=\"b\r\nhello\r\n0\r\n\r\n"},
		{"extension with NUL", "5;a=\"\x00\"\r\nhello\r\n0\r\n\r\n"},
		{"whitespace at the end of an extension", "5;a \r\nhello\r\n0\r\n\r\n"},
		{"chunk line of 4097 bytes", "5;" + strings.Repeat("a", 4097-4) + "\r\nhello\r\n0\r\n\r\n"},
		{"too much extension overhead", strings.Repeat("1;"+strings.Repeat("e", 1000)+"\r\nx\r\n", 20) + "0\r\n\r\n"},
		{"trailer without a colon", "0\r\nX-Sum\r\n\r\n"},
		{"folded trailer", "0\r\nX-Sum: 1\r\n 2\r\n\r\n"},
		{"trailer with a bare LF", "0\r\nX-Sum: 1\n\r\n"},
		{"trailer with a CR inside", "0\r\nX-Sum: 1\r2\r\n\r\n"},
		{"bare LF ending the trailer section", "0\r\n\n"},
		{"trailer section over 4096 bytes", "0\r\n" + strings.Repeat("X-A: "+strings.Repeat("a", 90)+"\r\n", 50) + "\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c ChunkedReader
			c.Reset(bufio.NewReader(strings.NewReader(tt.body)))
			_, err := io.ReadAll(&c)
			var ge *gatehouse.Error
			if !errors.As(err, &ge) || ge.Code != gatehouse.EINVALID {
				t.Fatalf("ReadAll: %v; want an EINVALID *gatehouse.Error", err)
			}
		})
	}
	for _, cut := range []string{"", "5", "5\r\nhel", "5\r\nhello", "5\r\nhello\r", "5\r\nhello\r\n0\r\n", "5\r\nhello\r\n0\r\nX: 1\r\n"} {
		var c ChunkedReader
		c.Reset(bufio.NewReader(strings.NewReader(cut)))
		if _, err := io.ReadAll(&c); err != io.ErrUnexpectedEOF {
			t.Errorf("body %q cut short: %v; want io.ErrUnexpectedEOF", cut, err)
		}
	}
}

// TestChunkedReaderReturnsDataWithoutWaitingForTheNextChunk: a client that
// sends a chunk and pauses gets it through at once.
func TestChunkedReaderReturnsDataWithoutWaitingForTheNextChunk(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte("5\r\nhello\r\n"))
	var c ChunkedReader
	c.Reset(bufio.NewReader(pr))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("Read = %q, %v; want \"hello\", nil", buf[:n], err)
	}
}

// TestChunkedReaderReturnsTheEndWithTheLastData: when the whole body is
// buffered, the read that returns its last bytes says it ended.
func TestChunkedReaderReturnsTheEndWithTheLastData(t *testing.T) {
	var c ChunkedReader
	c.Reset(bufio.NewReader(strings.NewReader("5\r\nhello\r\n0\r\n\r\n")))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if n != 5 || err != io.EOF {
		t.Fatalf("Read = %d, %v; want 5, io.EOF", n, err)
	}
}

func TestChunkedReaderAllocatesNothing(t *testing.T) {
	body := "5;a=b\r\nhello\r\n5\r\nworld\r\n0\r\nX: 1\r\n\r\n"
	sr := strings.NewReader(body)
	br := bufio.NewReader(sr)
	var c ChunkedReader
	buf := make([]byte, 64)
	allocs := testing.AllocsPerRun(100, func() {
		sr.Reset(body)
		br.Reset(sr)
		c.Reset(br)
		for {
			if _, err := c.Read(buf); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per body; want 0", allocs)
	}
}
