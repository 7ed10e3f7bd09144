package sqlshared

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"
	"time"
)

// SplitStatements splits a migration script into its statements, without
// the terminating semicolons or the comments between statements. A
// semicolon inside a quoted string or identifier, or inside a comment, does
// not end a statement. Dollar-quoted bodies (PostgreSQL functions) are
// refused: no migration has one, and splitting them needs a real parser.
func SplitStatements(script string) ([]string, error) {
	var (
		out   []string
		cur   strings.Builder
		quote byte // ' or " while inside one
	)
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	for i := 0; i < len(script); i++ {
		c := script[i]
		switch {
		case quote != 0:
			cur.WriteByte(c)
			if c == quote {
				quote = 0 // a doubled quote re-enters at the next byte
			}
		case c == '\'' || c == '"':
			quote = c
			cur.WriteByte(c)
		case c == '-' && i+1 < len(script) && script[i+1] == '-':
			for i < len(script) && script[i] != '\n' {
				i++
			}
			cur.WriteByte('\n')
		case c == '/' && i+1 < len(script) && script[i+1] == '*':
			end := strings.Index(script[i+2:], "*/")
			if end < 0 {
				return nil, errors.New("unterminated /* comment")
			}
			i += end + 3
			cur.WriteByte(' ')
		case c == '$' && i+1 < len(script) && (script[i+1] == '$' || isIdentStart(script[i+1])) && dollarTag.MatchString(script[i:]):
			return nil, errors.New("dollar-quoted strings are not supported")
		case c == ';':
			flush()
		default:
			cur.WriteByte(c)
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	flush()
	return out, nil
}

var dollarTag = regexp.MustCompile(`^\$[A-Za-z_]*\$`)

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// StatementReplay is one statement of a migration replayed on a populated
// store (ReplayMigration).
type StatementReplay struct {
	// Statement is the statement's first line, shortened.
	Statement string `json:"statement"`
	// Replayed is true when the statement ran: its Duration is what it
	// costs on this store. Otherwise Note says why not.
	Replayed bool          `json:"replayed"`
	Duration time.Duration `json:"duration_ns"`
	Note     string        `json:"note,omitempty"`
}

// MigrationReplay is what ReplayMigration measured of one migration.
type MigrationReplay struct {
	Name       string            `json:"name"`
	Statements []StatementReplay `json:"statements"`
}

// Total is the time of the statements that were replayed.
func (m MigrationReplay) Total() time.Duration {
	var d time.Duration
	for _, s := range m.Statements {
		d += s.Duration
	}
	return d
}

// Replayed counts the statements that ran.
func (m MigrationReplay) Replayed() int {
	n := 0
	for _, s := range m.Statements {
		if s.Replayed {
			n++
		}
	}
	return n
}

// createIndex matches CREATE [UNIQUE] INDEX [IF NOT EXISTS] name.
var createIndex = regexp.MustCompile(`(?is)^CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?("?[A-Za-z_][A-Za-z0-9_]*"?)\s`)

// ReplayExec runs one SQL statement in the replay's transaction. measured
// is set for a migration's own statement (the one timed), not for the
// savepoints and index drops around it: an adapter applies its statement
// timeout there.
type ReplayExec func(ctx context.Context, stmt string, measured bool) error

// schemaMismatch matches the errors of a statement that no longer applies
// to the current schema (SQLite's and PostgreSQL's wording): a table,
// column or index that exists already, or one that was dropped or renamed
// since; and rows that conflict with those stored (an INSERT replayed into
// a table it filled). Either backend leaves the transaction usable after
// them. Any other error (a timeout, an interruption, a full disk) may have
// ended the transaction on SQLite, so the replay of that migration stops.
var schemaMismatch = regexp.MustCompile(`(?i)already exists|duplicate column|no such (table|column|index)|has no column|does not exist|constraint failed|duplicate key|violates`)

// ReplayMigration runs the statements of one migration script, one by one
// under a savepoint, in a transaction that the caller opened and will roll
// back: the time of each on a store that is already populated is what the
// migration's statement would cost on a store of that size. The schema has
// moved on since the migration first ran, so before a CREATE INDEX the index
// is dropped (and rebuilt by the statement), and a statement that no
// longer applies (a table or column that exists already, or one dropped
// since) is rolled back to its savepoint and noted as not replayed: adding
// a table or a column with a constant default is a change of the catalogue
// on both backends, whatever the store holds. Any other error stops the
// replay of the migration: its statement is noted with the error (a
// timeout that exec set shows there) and the rest as not run.
func ReplayMigration(ctx context.Context, name, script string, exec ReplayExec) (MigrationReplay, error) {
	m := MigrationReplay{Name: name}
	stmts, err := SplitStatements(script)
	if err != nil {
		return m, fmt.Errorf("%s: %w", name, err)
	}
	for i, stmt := range stmts {
		r := StatementReplay{Statement: firstLine(stmt)}
		if strings.HasPrefix(strings.ToUpper(stmt), "PRAGMA") {
			r.Note = "pragma: not replayed"
			m.Statements = append(m.Statements, r)
			continue
		}
		if err := exec(ctx, "SAVEPOINT replay", false); err != nil {
			return m, fmt.Errorf("%s: savepoint: %w", name, err)
		}
		if sub := createIndex.FindStringSubmatch(stmt); sub != nil {
			if err := exec(ctx, "DROP INDEX IF EXISTS "+sub[1], false); err != nil {
				return m, fmt.Errorf("%s: drop index %s before replaying it: %w", name, sub[1], err)
			}
		}
		start := time.Now()
		err := exec(ctx, stmt, true)
		r.Duration = time.Since(start)
		switch {
		case err != nil && !schemaMismatch.MatchString(err.Error()):
			r.Note = "stopped: " + oneLine(err.Error())
			m.Statements = append(m.Statements, r)
			for _, rest := range stmts[i+1:] {
				m.Statements = append(m.Statements, StatementReplay{Statement: firstLine(rest), Note: "not run: an earlier statement was stopped"})
			}
			return m, nil
		case err != nil:
			r.Duration, r.Note = 0, "does not apply to the current schema: "+oneLine(err.Error())
			if err := exec(ctx, "ROLLBACK TO SAVEPOINT replay", false); err != nil {
				return m, fmt.Errorf("%s: rollback to savepoint: %w", name, err)
			}
		default:
			r.Replayed = true
		}
		if err := exec(ctx, "RELEASE SAVEPOINT replay", false); err != nil {
			return m, fmt.Errorf("%s: release savepoint: %w", name, err)
		}
		m.Statements = append(m.Statements, r)
	}
	return m, nil
}

// firstLine is a statement's first line, whitespace folded, at most 80
// bytes.
func firstLine(stmt string) string {
	line, _, _ := strings.Cut(stmt, "\n")
	line = strings.Join(strings.Fields(line), " ")
	if len(line) > 80 {
		line = line[:77] + "..."
	}
	return line
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}

// ReplayTx is the transaction a migration is replayed in: Exec runs a
// statement in it, Rollback ends it (a no-op when the transaction is gone
// already).
type ReplayTx struct {
	Exec     ReplayExec
	Rollback func() error
}

// ReplayMigrations replays every migration of fsys (MigrationFiles) on a
// populated store, in name order, each in a transaction that begin opens
// and that is rolled back after it (ReplayMigration), and calls done, if
// set, after each. applied reports whether the store holds a migration (by
// its file name): every one must be, or the replay would time statements
// against an older schema than the migrations that follow expect.
func ReplayMigrations(ctx context.Context, fsys fs.FS, applied func(ctx context.Context, name string) (bool, error),
	begin func(ctx context.Context) (ReplayTx, error), done func(MigrationReplay)) ([]MigrationReplay, error) {
	names, err := MigrationFiles(fsys)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		if ok, err := applied(ctx, path.Base(name)); err != nil || !ok {
			return nil, errors.Join(fmt.Errorf("%s is not applied to this store: open it with this version first", path.Base(name)), err)
		}
	}
	var out []MigrationReplay
	for _, name := range names {
		base := path.Base(name)
		script, err := fs.ReadFile(fsys, name)
		if err != nil {
			return out, err
		}
		tx, err := begin(ctx)
		if err != nil {
			return out, fmt.Errorf("replay %s: %w", base, err)
		}
		m, err := ReplayMigration(ctx, base, string(script), tx.Exec)
		if rerr := tx.Rollback(); rerr != nil {
			err = errors.Join(err, fmt.Errorf("replay %s: rollback: %w", base, rerr))
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
		if done != nil {
			done(m)
		}
	}
	return out, nil
}
