package httpx

// IsTokenByte reports whether c is an RFC 9110 §5.6.2 tchar, the bytes of a
// method or a field name: the one table gatehouse checks tokens with.
func IsTokenByte(c byte) bool { return tokenTable[c] }

var tokenTable = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()
