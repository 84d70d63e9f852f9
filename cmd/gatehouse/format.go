package main

// Small helpers of the commands' text.

import (
	"fmt"
	"strings"
)

// plural is n and the noun, in the plural unless n is 1 ("2 policies").
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "y") {
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(noun, "y"))
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// orDash is s, or "-" in a table cell where it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// orUnknown is a failure's reason, or says there is none.
func orUnknown(reason string) string {
	if reason == "" {
		return "no reason given"
	}
	return reason
}
