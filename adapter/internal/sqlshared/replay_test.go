package sqlshared

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestSplitStatements: statements end at a semicolon outside quotes and
// comments; comments are dropped; dollar quotes and unterminated quotes or
// comments are refused.
func TestSplitStatements(t *testing.T) {
	for _, tc := range []struct {
		script string
		want   []string
		err    string
	}{
		{"CREATE TABLE a (x TEXT);\nCREATE INDEX a_x ON a (x);", []string{"CREATE TABLE a (x TEXT)", "CREATE INDEX a_x ON a (x)"}, ""},
		{"-- a comment; with a semicolon\nUPDATE a SET x = 'a;b';  ", []string{"UPDATE a SET x = 'a;b'"}, ""},
		{"UPDATE a SET x = 'it''s; here' /* no; end */ WHERE \"we;ird\" = 1", []string{"UPDATE a SET x = 'it''s; here'   WHERE \"we;ird\" = 1"}, ""},
		{"SELECT 1; -- trailing\n;;", []string{"SELECT 1"}, ""},
		{"", nil, ""},
		{"UPDATE a SET x = 'open", nil, "unterminated ' quote"},
		{"SELECT 1 /* open", nil, "unterminated /* comment"},
		{"CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql", nil, "dollar-quoted"},
		{"CREATE FUNCTION f() AS $body$ x $body$", nil, "dollar-quoted"},
		{"SELECT $1", []string{"SELECT $1"}, ""},
	} {
		got, err := SplitStatements(tc.script)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("SplitStatements(%q) error %v, want %q", tc.script, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("SplitStatements(%q) = %q, %v; want %q", tc.script, got, err, tc.want)
		}
	}
}

// TestReplayMigration runs a script against a recording exec: each
// statement under a savepoint, an index dropped before it is rebuilt, a
// statement that no longer applies rolled back to its savepoint, and one
// that fails otherwise ending the replay with the rest not run.
func TestReplayMigration(t *testing.T) {
	var ran []string
	exec := func(_ context.Context, stmt string, measured bool) error {
		if measured {
			stmt = "* " + stmt
		}
		ran = append(ran, stmt)
		switch {
		case strings.Contains(stmt, "TABLE old"):
			return errors.New("table old already exists")
		case strings.Contains(stmt, "slow"):
			return errors.New("interrupted")
		}
		return nil
	}
	script := "PRAGMA foreign_keys = OFF;\nCREATE TABLE old (x);\nCREATE UNIQUE INDEX IF NOT EXISTS old_x ON old (x);\nUPDATE slow SET x = 1;\nUPDATE after SET x = 2;"
	m, err := ReplayMigration(context.Background(), "001_x.sql", script, exec)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"SAVEPOINT replay", "* CREATE TABLE old (x)", "ROLLBACK TO SAVEPOINT replay", "RELEASE SAVEPOINT replay",
		"SAVEPOINT replay", "DROP INDEX IF EXISTS old_x", "* CREATE UNIQUE INDEX IF NOT EXISTS old_x ON old (x)", "RELEASE SAVEPOINT replay",
		"SAVEPOINT replay", "* UPDATE slow SET x = 1",
	}
	if !slices.Equal(ran, want) {
		t.Errorf("ran\n%q\nwant\n%q", ran, want)
	}
	var notes []string
	for _, s := range m.Statements {
		notes = append(notes, s.Note)
	}
	if len(notes) != 5 || !strings.HasPrefix(notes[0], "pragma") || !strings.HasPrefix(notes[1], "does not apply") || notes[2] != "" ||
		!strings.HasPrefix(notes[3], "stopped: interrupted") || !strings.HasPrefix(notes[4], "not run") {
		t.Errorf("notes %q", notes)
	}
	if m.Replayed() != 1 || !m.Statements[2].Replayed {
		t.Errorf("replayed %d: want the index alone", m.Replayed())
	}
}
