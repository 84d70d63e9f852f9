package main

// The change set printer: what a diff, an apply or a sync changes, one
// line per resource (+ create, ~ update, - delete) and one per changed
// field of an update.

import (
	"encoding/json"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/config"
)

// maxValueWidth is how many characters of a field's value a change line
// shows; a longer one is cut with an ellipsis.
const maxValueWidth = 72

// printChangeSet prints the changes of cs. place, if not
// nil, gives an entry's place in the files from its pointer ("" if none).
func printChangeSet(w io.Writer, cs *config.ChangeSet, place func(pointer string) string) {
	printChanges(w, cs.Changes, place)
}

// printChanges prints changes, a change set's or a revision diff's.
func printChanges(w io.Writer, changes []config.Change, place func(pointer string) string) {
	for _, c := range changes {
		line := changeSymbol(c.Action) + " " + config.Singular(c.Kind) + " " + c.ID
		if c.Name != "" && c.Name != c.ID {
			line += fmt.Sprintf(" (%s)", c.Name)
		}
		if place != nil && c.Pointer != "" {
			if at := place(c.Pointer); at != "" {
				line += "  at " + at
			}
		}
		fmt.Fprintln(w, line)
		for _, f := range c.Fields {
			fmt.Fprintf(w, "    %s: %s\n", f.Field, fieldChange(f))
		}
		for _, warning := range c.Warnings {
			fmt.Fprintf(w, "    warning: %s\n", warning)
		}
	}
}

// summaryLine counts a change set's changes, in the future tense for a
// dry run ("1 to create") and the past for a real one ("1 created").
func summaryLine(cs *config.ChangeSet) string {
	return summaryText(cs.Summary, cs.DryRun)
}

// summaryText is summaryLine of a summary, in the future tense if
// planned.
func summaryText(s config.Summary, planned bool) string {
	if s.Create+s.Update+s.Delete == 0 {
		return "No changes."
	}
	if planned {
		return fmt.Sprintf("%d to create, %d to update, %d to delete.", s.Create, s.Update, s.Delete)
	}
	return fmt.Sprintf("%d created, %d updated, %d deleted.", s.Create, s.Update, s.Delete)
}

// changeCount is the number of resources cs changes.
func changeCount(cs *config.ChangeSet) int {
	return cs.Summary.Create + cs.Summary.Update + cs.Summary.Delete
}

func changeSymbol(op gatehouse.Op) string {
	switch op {
	case gatehouse.OpCreate:
		return "+"
	case gatehouse.OpUpdate:
		return "~"
	case gatehouse.OpDelete:
		return "-"
	}
	return "?"
}

// fieldChange is "from -> to"; a member that was or becomes absent shows
// as (none), and a secret, whose values are never sent, as changed.
func fieldChange(f config.FieldChange) string {
	if f.From == nil && f.To == nil {
		return "changed (value not shown)"
	}
	return showValue(f.From) + " -> " + showValue(f.To)
}

// showValue is a value as compact JSON, cut at maxValueWidth characters.
func showValue(v any) string {
	if v == nil {
		return "(none)"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	s := string(b)
	if utf8.RuneCountInString(s) > maxValueWidth {
		s = string([]rune(s)[:maxValueWidth-1]) + "…"
	}
	return s
}
