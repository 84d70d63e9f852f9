package testupstream

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// WebSocket opcodes (RFC 6455, section 5.2).
const (
	OpContinuation = 0x0
	OpText         = 0x1
	OpBinary       = 0x2
	OpClose        = 0x8
	OpPing         = 0x9
	OpPong         = 0xA
)

// MaxWSMessage is the largest WebSocket message either side accepts.
const MaxWSMessage = 32 << 20

// wsGUID is RFC 6455's magic GUID (section 1.3). Note "...C85B11": the
// RFC's own example (key dGhlIHNhbXBsZSBub25jZQ== → s3pPLMBiTxaQ9kYGzzhZRbK+xOo=)
// pins it, and TestWebSocketWire checks that example.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// WSAccept returns the Sec-WebSocket-Accept value for a Sec-WebSocket-Key.
func WSAccept(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// WSCloseError is returned by reads once a close frame was received.
type WSCloseError struct {
	Code   int // 1005 if the close frame carried no code
	Reason string
}

func (e *WSCloseError) Error() string {
	return fmt.Sprintf("websocket: closed by peer: %d %q", e.Code, e.Reason)
}

// WSConn is one side of a WebSocket connection: the client returned by
// DialWebSocket, or the upstream's echo side. Writes are safe for
// concurrent use; reads (ReadMessage, ReadText) and Close are not safe
// concurrently with other reads.
type WSConn struct {
	conn   net.Conn
	br     *bufio.Reader
	server bool // server side: expects masked frames, writes unmasked

	wmu       sync.Mutex
	closeSent bool // guarded by wmu

	closeReceived bool // reader-side only
}

// NetConn returns the underlying connection.
func (c *WSConn) NetConn() net.Conn { return c.conn }

// WriteText sends a text message.
func (c *WSConn) WriteText(s string) error { return c.WriteMessage(OpText, []byte(s)) }

// WriteBinary sends a binary message.
func (c *WSConn) WriteBinary(b []byte) error { return c.WriteMessage(OpBinary, b) }

// WriteMessage sends one unfragmented frame with opcode op.
func (c *WSConn) WriteMessage(op int, data []byte) error {
	switch op {
	case OpText, OpBinary:
	case OpPing, OpPong:
		if len(data) > 125 {
			return errors.New("websocket: control frame payload over 125 bytes")
		}
	default:
		return fmt.Errorf("websocket: cannot write opcode %#x (use Close)", op)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return errors.New("websocket: write after close")
	}
	return c.writeFrameLocked(byte(op), data)
}

func (c *WSConn) writeFrameLocked(op byte, data []byte) error {
	buf := make([]byte, 0, 14+len(data))
	buf = append(buf, 0x80|op) // FIN
	var maskBit byte
	if !c.server {
		maskBit = 0x80
	}
	switch n := len(data); {
	case n <= 125:
		buf = append(buf, maskBit|byte(n))
	case n <= 0xFFFF:
		buf = append(buf, maskBit|126)
		buf = binary.BigEndian.AppendUint16(buf, uint16(n))
	default:
		buf = append(buf, maskBit|127)
		buf = binary.BigEndian.AppendUint64(buf, uint64(n))
	}
	if c.server {
		buf = append(buf, data...)
	} else {
		var key [4]byte
		rand.Read(key[:])
		buf = append(buf, key[:]...)
		start := len(buf)
		buf = append(buf, data...)
		maskBytes(buf[start:], key)
	}
	_, err := c.conn.Write(buf)
	return err
}

// writeClose sends a close frame with payload unless one was sent.
func (c *WSConn) writeClose(payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return nil
	}
	c.closeSent = true
	return c.writeFrameLocked(OpClose, payload)
}

func closePayload(code int, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

func maskBytes(b []byte, key [4]byte) {
	for i := range b {
		b[i] ^= key[i&3]
	}
}

// fail sends a close frame with code and returns a protocol error.
func (c *WSConn) fail(code int, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	c.writeClose(closePayload(code, msg))
	return fmt.Errorf("websocket: %s", msg)
}

// ReadText reads the next message, which must be a text message.
func (c *WSConn) ReadText() (string, error) {
	op, data, err := c.ReadMessage()
	if err != nil {
		return "", err
	}
	if op != OpText {
		return "", fmt.Errorf("websocket: got a binary message, want text")
	}
	return string(data), nil
}

// ReadMessage reads the next data message (OpText or OpBinary), joining
// fragments. It answers pings with pongs and skips pongs. When a close
// frame arrives it answers it (if it did not send one itself) and returns
// a *WSCloseError.
func (c *WSConn) ReadMessage() (op int, data []byte, err error) {
	var msgOp byte
	var msg []byte
	fragmented := false
	for {
		fin, fop, payload, err := c.readFrame()
		if err != nil {
			return 0, nil, err
		}
		switch fop {
		case OpPing:
			c.wmu.Lock()
			if !c.closeSent {
				c.writeFrameLocked(OpPong, payload)
			}
			c.wmu.Unlock()
			continue
		case OpPong:
			continue
		case OpClose:
			c.closeReceived = true
			ce := &WSCloseError{Code: 1005}
			switch {
			case len(payload) == 1:
				return 0, nil, c.fail(1002, "close frame with a 1-byte payload")
			case len(payload) >= 2:
				ce.Code = int(binary.BigEndian.Uint16(payload))
				ce.Reason = string(payload[2:])
				c.writeClose(payload[:2])
			default:
				c.writeClose(nil)
			}
			return 0, nil, ce
		case OpText, OpBinary:
			if fragmented {
				return 0, nil, c.fail(1002, "new message inside a fragmented one")
			}
			msgOp, msg = fop, payload
		case OpContinuation:
			if !fragmented {
				return 0, nil, c.fail(1002, "continuation frame without a message")
			}
			if int64(len(msg))+int64(len(payload)) > MaxWSMessage {
				return 0, nil, c.fail(1009, "message over %d bytes", MaxWSMessage)
			}
			msg = append(msg, payload...)
		}
		fragmented = !fin
		if fin {
			if msgOp == OpText && !utf8.Valid(msg) {
				return 0, nil, c.fail(1007, "text message is not UTF-8")
			}
			return int(msgOp), msg, nil
		}
	}
}

func (c *WSConn) readFrame() (fin bool, op byte, payload []byte, err error) {
	var hdr [8]byte
	if _, err = io.ReadFull(c.br, hdr[:2]); err != nil {
		return
	}
	b0 := hdr[0] // hdr is reused for the extended length
	fin = b0&0x80 != 0
	op = b0 & 0x0F
	masked := hdr[1]&0x80 != 0
	n := uint64(hdr[1] & 0x7F)
	switch n {
	case 126:
		if _, err = io.ReadFull(c.br, hdr[:2]); err != nil {
			return
		}
		n = uint64(binary.BigEndian.Uint16(hdr[:2]))
	case 127:
		if _, err = io.ReadFull(c.br, hdr[:8]); err != nil {
			return
		}
		n = binary.BigEndian.Uint64(hdr[:8])
	}
	switch {
	case b0&0x70 != 0:
		err = c.fail(1002, "reserved bits set without an extension")
	case op >= 0x8 && (op > OpPong || !fin || n > 125):
		err = c.fail(1002, "bad control frame (opcode %#x, fin %v, length %d)", op, fin, n)
	case op > OpBinary && op < 0x8:
		err = c.fail(1002, "unknown opcode %#x", op)
	case masked != c.server:
		err = c.fail(1002, "frame masking: masked=%v from the %s", masked, map[bool]string{true: "client", false: "server"}[c.server])
	case n > MaxWSMessage:
		err = c.fail(1009, "frame over %d bytes", MaxWSMessage)
	}
	if err != nil {
		return
	}
	var key [4]byte
	if masked {
		if _, err = io.ReadFull(c.br, key[:]); err != nil {
			return
		}
	}
	payload = make([]byte, n)
	if _, err = io.ReadFull(c.br, payload); err != nil {
		return
	}
	if masked {
		maskBytes(payload, key)
	}
	return
}

// Close starts the closing handshake (close frame 1000), waits up to two
// seconds for the peer's close frame (discarding messages meanwhile), and
// closes the connection. If the peer closed first, it just closes.
func (c *WSConn) Close() error {
	c.wmu.Lock()
	initiated := !c.closeSent
	var err error
	if initiated {
		c.closeSent = true
		err = c.writeFrameLocked(OpClose, closePayload(1000, ""))
	}
	c.wmu.Unlock()
	if initiated && err == nil && !c.closeReceived {
		c.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				break
			}
		}
	}
	return c.conn.Close()
}

// headerHasToken reports whether a comma-separated header contains token.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// serveWebSocket performs the RFC 6455 handshake and echoes every data
// message back with its opcode until the client closes.
func (u *Upstream) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 1 {
		fail(w, http.StatusBadRequest, "WebSocket needs HTTP/1.1 (RFC 8441 is not supported)")
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		fail(w, http.StatusMethodNotAllowed, "WebSocket handshake must be GET")
		return
	}
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		fail(w, http.StatusBadRequest, "not a WebSocket handshake (need Connection: Upgrade and Upgrade: websocket)")
		return
	}
	if v := r.Header.Get("Sec-WebSocket-Version"); v != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		fail(w, http.StatusUpgradeRequired, "Sec-WebSocket-Version %q is not supported", v)
		return
	}
	key := r.Header.Get("Sec-WebSocket-Key")
	if k, err := base64.StdEncoding.DecodeString(key); err != nil || len(k) != 16 {
		fail(w, http.StatusBadRequest, "bad Sec-WebSocket-Key %q", key)
		return
	}
	c, brw := hijack(w, r)
	defer c.Close()

	h := http.Header{}
	if u.name != nil {
		h["X-Upstream-Name"] = u.name
	}
	if p := r.Header.Get("Sec-WebSocket-Protocol"); p != "" {
		first, _, _ := strings.Cut(p, ",")
		h.Set("Sec-WebSocket-Protocol", strings.TrimSpace(first))
	}
	bw := brw.Writer
	bw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ")
	bw.WriteString(WSAccept(key))
	bw.WriteString("\r\n")
	h.Write(bw)
	bw.WriteString("\r\n")
	if bw.Flush() != nil {
		return
	}
	ws := &WSConn{conn: c, br: brw.Reader, server: true}
	for {
		op, data, err := ws.ReadMessage()
		if err != nil {
			return // close answered (or connection gone): close TCP
		}
		if ws.WriteMessage(op, data) != nil {
			return
		}
	}
}

// WSDialer dials WebSocket connections.
type WSDialer struct {
	// TLSConfig is used for wss:// and https:// URLs (ALPN is forced to
	// http/1.1; ServerName defaults to the URL's host).
	TLSConfig *tls.Config
	// Timeout bounds the dial and the handshake; 0 means 10 seconds.
	Timeout time.Duration
}

// DialWebSocket opens a WebSocket connection to rawURL (ws://, wss://,
// http:// or https://), sending header with the handshake. Header values
// for Connection, Upgrade, Sec-WebSocket-Version and Sec-WebSocket-Key, if
// given, replace the defaults (to send deliberately broken handshakes); a
// Host header sets the request's Host.
//
// If the server does not switch protocols, DialWebSocket returns the
// response (its body read into memory) and an error.
func DialWebSocket(rawURL string, header http.Header) (*WSConn, *http.Response, error) {
	return (&WSDialer{}).Dial(rawURL, header)
}

// Dial is DialWebSocket with d's settings.
func (d *WSDialer) Dial(rawURL string, header http.Header) (*WSConn, *http.Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, err
	}
	var useTLS bool
	switch u.Scheme {
	case "ws", "http":
		u.Scheme = "http"
	case "wss", "https":
		u.Scheme, useTLS = "https", true
	default:
		return nil, nil, fmt.Errorf("websocket: unsupported scheme %q", u.Scheme)
	}
	addr := u.Host
	if u.Port() == "" {
		port := "80"
		if useTLS {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	timeout := d.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	deadline := time.Now().Add(timeout)
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, nil, err
	}
	conn.SetDeadline(deadline)
	if useTLS {
		cfg := &tls.Config{}
		if d.TLSConfig != nil {
			cfg = d.TLSConfig.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		cfg.NextProtos = []string{"http/1.1"}
		tc := tls.Client(conn, cfg)
		if err := tc.Handshake(); err != nil {
			conn.Close()
			return nil, nil, err
		}
		conn = tc
	}

	h := header.Clone()
	if h == nil {
		h = http.Header{}
	}
	req := &http.Request{
		Method:     http.MethodGet,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       u.Host,
	}
	if host := h.Get("Host"); host != "" {
		req.Host = host
		h.Del("Host")
	}
	setDefault := func(name, value string) {
		if len(h.Values(name)) == 0 {
			h.Set(name, value)
		}
	}
	setDefault("Connection", "Upgrade")
	setDefault("Upgrade", "websocket")
	setDefault("Sec-WebSocket-Version", "13")
	if h.Get("Sec-WebSocket-Key") == "" {
		var k [16]byte
		rand.Read(k[:])
		h.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(k[:]))
	}
	key := h.Get("Sec-WebSocket-Key")

	bw := bufio.NewWriter(conn)
	if err := req.Write(bw); err != nil {
		conn.Close()
		return nil, nil, err
	}
	if err := bw.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		conn.Close()
		return nil, resp, fmt.Errorf("websocket: handshake answered %s", resp.Status)
	}
	switch {
	case !headerHasToken(resp.Header, "Upgrade", "websocket"):
		err = fmt.Errorf("websocket: 101 without Upgrade: websocket (got %q)", resp.Header.Values("Upgrade"))
	case !headerHasToken(resp.Header, "Connection", "upgrade"):
		err = fmt.Errorf("websocket: 101 without Connection: Upgrade (got %q)", resp.Header.Values("Connection"))
	case resp.Header.Get("Sec-WebSocket-Accept") != WSAccept(key):
		err = fmt.Errorf("websocket: bad Sec-WebSocket-Accept %q", resp.Header.Get("Sec-WebSocket-Accept"))
	}
	if err != nil {
		conn.Close()
		return nil, resp, err
	}
	conn.SetDeadline(time.Time{})
	return &WSConn{conn: conn, br: br, server: false}, resp, nil
}
