//go:build !linux

package proxy

import "testing"

// unconnectableAddr needs Linux's full-backlog behaviour.
func unconnectableAddr(t *testing.T) string {
	t.Skip("no unconnectable address on this platform")
	return ""
}
