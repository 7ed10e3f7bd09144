// Package sqlite implements linkbridge.Store, linkbridge.CaseStore and
// linkbridge.OutboxStore on an embedded SQLite database (modernc.org/sqlite,
// pure Go, driver name "sqlite").
//
// The database is one file, created with mode 0600 in a directory created
// with mode 0700, because it holds patient data. It runs in WAL mode with
// foreign keys on and synchronous=FULL, so a write that returned nil is on
// disk. Migrations are embedded SQL files run in order at Open, each in its
// own transaction (with foreign key enforcement off and a foreign key check
// before the commit, so that a table can be rebuilt), and recorded by name
// in the migrations table.
//
// Writes (CreateReferral, UpdateReferral and the outbox's claims and state
// changes, see outbox.go) go through a single writer goroutine that owns the
// only write connection and commits in groups: it takes every request that
// is waiting (up to MaxBatch), runs each inside its own SAVEPOINT of one
// transaction, and COMMITs once, so one fsync serves many requests while
// each request still succeeds or fails on its own. Reads use a separate pool
// of read-only connections, which WAL lets run alongside the writer. WAL
// checkpoints run on a connection of their own, off the write path (see
// checkpoint.go).
//
// A resource's current version is in the resource table, the versions it
// replaced in resource_history; search_param indexes the current version's
// search parameter values, which resource.params lists.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
	sqlitedriver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migration/*.sql
var migrationFS embed.FS

// DefaultMaxBatch is the default number of write requests committed together.
const DefaultMaxBatch = 128

// Page caches. Every connection has its own, so the store's memory is
// the writer's cache plus each reader's, and nothing else grows with the
// store (mmap is off: a mapped file's pages would count in the process's
// resident set as the store grows). A cache costs more than its nominal
// size: SQLite allocates each 4 KiB page with its header (about 4.3 KB),
// which modernc.org/libc's allocator rounds up to an 8 KiB slot, so a
// 16 MiB cache takes 37 MB once full (measured; docs/performance.md#memory).
const (
	// DefaultWriteCacheMiB is the write connection's page cache: 19 MB
	// once full (16 MiB took 37 MB of the gateway's 150 MB budget).
	DefaultWriteCacheMiB = 8
	// DefaultReadCacheMiB is each read connection's page cache. Reads
	// find the pages the writer wrote in the operating system's file
	// cache; a small cache per reader keeps the read pool's memory
	// bounded whatever the store's size.
	DefaultReadCacheMiB = 1
	// checkpointCacheKiB is the checkpointer's page cache: a checkpoint
	// copies WAL frames into the database file without caching them.
	checkpointCacheKiB = 256
	// mmapPragma turns memory-mapped I/O off on every connection.
	mmapPragma = "mmap_size(0)"
)

// cachePragma is the cache_size pragma of a cache of kib KiB.
func cachePragma(kib int) string { return "cache_size(-" + strconv.Itoa(kib) + ")" }

// ErrClosed is returned by writes to a DB that is closed or closing.
var ErrClosed = errors.New("sqlite: database is closed")

// timeLayout is how times are stored: UTC, fixed width, so that text order is
// time order (for years 0000 to 9999).
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// Compile-time checks that DB implements the store contracts.
var (
	_ linkbridge.Store       = (*DB)(nil)
	_ linkbridge.CaseStore   = (*DB)(nil)
	_ linkbridge.OutboxStore = (*DB)(nil)
)

// DB is the SQLite store. Create it with NewDB, set its fields, then call
// Open; or use the Open function. Its methods are safe for concurrent use.
type DB struct {
	// Path is the database file.
	Path string
	// Logger receives operational messages (ids only, never patient data).
	// Defaults to discarding them.
	Logger *slog.Logger
	// Now returns the current time; it stamps recorded messages and
	// migrations. Defaults to time.Now.
	Now func() time.Time
	// MaxBatch caps how many write requests share one commit. Defaults to
	// DefaultMaxBatch.
	MaxBatch int
	// CheckpointInterval is the time between background WAL checkpoints
	// (see checkpoint.go). Defaults to DefaultCheckpointInterval; a negative
	// interval leaves checkpoints to SQLite, inside the writer's commits.
	CheckpointInterval time.Duration
	// CacheMiB is the write connection's page cache in MiB. Defaults to
	// DefaultWriteCacheMiB (see Open); a bulk load (bench seed) gains
	// from more.
	CacheMiB int
	// BulkLoad opens the file with synchronous=OFF: commits and
	// checkpoints do not wait for the disk, so a crash of the machine (not
	// of the process) may lose or corrupt the last commits. Only for a
	// load that is redone from the start after a crash (bench seed); never
	// for the gateway.
	BulkLoad bool
	// ReadCacheMiB is the page cache of each read connection in MiB.
	// Defaults to DefaultReadCacheMiB.
	ReadCacheMiB int

	read  *sql.DB // pool of query_only connections
	write *sql.DB // exactly one connection, owned by the writer
	w     *writer
	ckpt  *checkpointer // nil when SQLite checkpoints automatically

	// wantCheckpoint asks the writer to checkpoint after its next commit.
	wantCheckpoint atomic.Bool

	// feed announces committed referral changes (FollowReferrals).
	feed feed

	closeOnce sync.Once
	closeErr  error
}

// NewDB returns a DB for the file at path; call Open before using it.
func NewDB(path string) *DB {
	return &DB{Path: path}
}

// Open creates or opens the database file at path, runs any pending
// migrations and starts the writer. A nil logger discards messages.
func Open(ctx context.Context, path string, logger *slog.Logger) (*DB, error) {
	db := NewDB(path)
	db.Logger = logger
	if err := db.Open(ctx); err != nil {
		return nil, err
	}
	return db, nil
}

// Open creates the file's directory (0700) and the file (0600) if missing,
// opens the write connection and the read pool, runs pending migrations and
// starts the writer.
func (db *DB) Open(ctx context.Context) (err error) {
	if db.Path == "" || db.Path == ":memory:" || strings.HasPrefix(db.Path, "file:") {
		return fmt.Errorf("sqlite: open: need a file path, got %q", db.Path)
	}
	if db.Logger == nil {
		db.Logger = slog.New(slog.DiscardHandler)
	}
	if db.Now == nil {
		db.Now = time.Now
	}
	if db.MaxBatch <= 0 {
		db.MaxBatch = DefaultMaxBatch
	}
	if db.CheckpointInterval == 0 {
		db.CheckpointInterval = DefaultCheckpointInterval
	}
	path, err := filepath.Abs(db.Path)
	if err != nil {
		return fmt.Errorf("sqlite: open: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("sqlite: open: create directory: %w", err)
	}
	// Create the file ourselves so that SQLite never creates it with the
	// umask's mode; SQLite gives the -wal and -shm files the same mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("sqlite: open: create file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sqlite: open: create file: %w", err)
	}
	if err := chmodFiles(path); err != nil {
		return err
	}

	defer func() {
		if err != nil {
			err = errors.Join(err, db.closeHandles())
		}
	}()

	// The write connection: WAL, foreign keys, a busy timeout for other
	// processes, and synchronous=FULL so that a commit is durable when it
	// returns. temp_store=MEMORY keeps the sub-journal that every SAVEPOINT
	// of a group commit writes in memory instead of a temporary file (it was
	// 40% of the writer's time). The page cache (DefaultWriteCacheMiB)
	// holds the pages that intake writes at random keys (ids, NHS numbers,
	// search values) for longer, which saves reading them back; 64 MiB was
	// measured no faster under `bench` than 16 MiB and took the gateway to
	// 230 MB RSS; 16 MiB takes 37 MB once full, 8 MiB 19 MB, against a
	// 150 MB budget for the whole process (docs/performance.md#memory).
	// wal_autocheckpoint=0 leaves
	// checkpoints to the checkpointer; journal_size_limit truncates the WAL
	// file when it restarts (see checkpoint.go). _txlock=immediate makes BeginTx (used
	// by migrations) take the write lock at once instead of failing to
	// upgrade later.
	cacheMiB := db.CacheMiB
	if cacheMiB <= 0 {
		cacheMiB = DefaultWriteCacheMiB
	}
	syncPragma := "synchronous(FULL)"
	if db.BulkLoad {
		syncPragma = "synchronous(OFF)"
	}
	pragmas := []string{"busy_timeout(" + strconv.FormatInt(busyTimeout.Milliseconds(), 10) + ")", "foreign_keys(1)", "journal_mode(WAL)", syncPragma,
		"temp_store(MEMORY)", cachePragma(cacheMiB * 1024), mmapPragma, "journal_size_limit(" + strconv.Itoa(walSizeLimit) + ")"}
	if db.CheckpointInterval > 0 {
		pragmas = append(pragmas, "wal_autocheckpoint(0)")
	}
	db.write, err = sql.Open("sqlite", dsn(path, url.Values{
		"_pragma": pragmas,
		"_txlock": {"immediate"},
	}))
	if err != nil {
		return fmt.Errorf("sqlite: open: %w", err)
	}
	// SQLite has one writer at a time; one connection means the writer never
	// waits on a lock held by another connection of ours.
	db.write.SetMaxOpenConns(1)
	db.write.SetMaxIdleConns(1)
	db.write.SetConnMaxLifetime(0)
	db.write.SetConnMaxIdleTime(0)

	var mode string
	if err := db.write.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("sqlite: open: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("sqlite: open: journal_mode is %q, not wal", mode)
	}
	if err := db.migrate(ctx); err != nil {
		return err
	}
	if err := chmodFiles(path); err != nil {
		return err
	}

	// Readers: query_only guards against a write slipping into the pool;
	// each has a small page cache of its own (DefaultReadCacheMiB).
	readCacheMiB := db.ReadCacheMiB
	if readCacheMiB <= 0 {
		readCacheMiB = DefaultReadCacheMiB
	}
	db.read, err = sql.Open("sqlite", dsn(path, url.Values{
		"_pragma": {"busy_timeout(5000)", "foreign_keys(1)", "query_only(1)", cachePragma(readCacheMiB * 1024), mmapPragma},
	}))
	if err != nil {
		return fmt.Errorf("sqlite: open: %w", err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	db.read.SetMaxOpenConns(n)
	db.read.SetMaxIdleConns(n)
	if err := db.read.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: open: %w", err)
	}

	if db.CheckpointInterval > 0 {
		db.ckpt, err = startCheckpointer(ctx, path, db.CheckpointInterval, syncPragma, &db.wantCheckpoint, db.Logger)
		if err != nil {
			return err
		}
	}
	// The writer starts last: nothing after it can fail.
	db.w, err = startWriter(ctx, db)
	if err != nil {
		return err
	}
	return nil
}

// dsn builds a modernc.org/sqlite URI for an absolute path, escaping the path
// so that a '?' or '#' in it cannot be read as a parameter.
func dsn(path string, q url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}
	return u.String()
}

// chmodFiles sets mode 0600 on the database file and on its -wal and -shm
// files when they exist.
func chmodFiles(path string) error {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sqlite: open: chmod: %w", err)
		}
	}
	return nil
}

// Close stops the checkpointer and the writer, letting the batch in progress
// finish, checkpoints the whole WAL into the database file and closes the
// database. Writes after Close return ErrClosed. Close is idempotent.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		if db.w != nil {
			db.w.stop()
		}
		db.closeErr = db.closeHandles()
	})
	return db.closeErr
}

// closeHandles stops the checkpointer, truncates the WAL, and closes the
// read pool and then the write connection.
func (db *DB) closeHandles() error {
	var errs []error
	if db.ckpt != nil {
		errs = append(errs, db.ckpt.stop())
	}
	if db.w != nil {
		if db.w.conn != nil {
			// Readers may still hold a snapshot: then the WAL is not
			// truncated, and closing the last connection checkpoints it.
			if res, err := checkpoint(db.w.conn, "TRUNCATE"); err != nil {
				errs = append(errs, err)
			} else if res.busy {
				db.Logger.Debug("final checkpoint did not complete")
			}
		}
		errs = append(errs, db.w.close())
	}
	if db.read != nil {
		errs = append(errs, db.read.Close())
	}
	if db.write != nil {
		errs = append(errs, db.write.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// migrate runs, in name order, every embedded migration not yet recorded in
// the migrations table. Each runs in its own transaction together with its
// record, so a failed migration leaves no trace and is retried next time.
//
// Migrations run with foreign key enforcement off, as SQLite's procedure
// for schema changes that ALTER TABLE cannot make requires
// (https://www.sqlite.org/lang_altertable.html#otheralter): rebuilding a
// table that other tables reference drops it, which with enforcement on
// fails on the referencing rows (and PRAGMA foreign_keys cannot change
// inside a transaction, nor would defer_foreign_keys let the transaction
// commit). In its place PRAGMA foreign_key_check runs before each commit:
// a migration that leaves a broken reference is refused and rolled back.
// Enforcement is turned on again before migrate returns, checked, on the
// write connection that the writer then uses.
func (db *DB) migrate(ctx context.Context) (err error) {
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS migrations (
		name       TEXT NOT NULL PRIMARY KEY,
		applied_at TEXT NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("sqlite: migrate: create migrations table: %w", err)
	}
	names, err := sqlshared.MigrationFiles(migrationFS)
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	// The write pool has one connection: pinning it makes the pragmas
	// apply to the connection the migrations run on.
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	defer func() { err = errors.Join(err, conn.Close()) }()
	if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
		return fmt.Errorf("sqlite: migrate: foreign keys off: %w", err)
	}
	defer func() {
		// Also after a failure or cancellation: the connection stays in
		// the pool.
		if ferr := foreignKeysOn(context.WithoutCancel(ctx), conn); ferr != nil {
			err = errors.Join(err, fmt.Errorf("sqlite: migrate: %w", ferr))
		}
	}()
	for _, name := range names {
		if err := db.migrateFile(ctx, conn, name); err != nil {
			return fmt.Errorf("sqlite: migrate %s: %w", filepath.Base(name), err)
		}
	}
	return nil
}

// foreignKeysOn turns foreign key enforcement on for conn and checks that
// it is on.
func foreignKeysOn(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = ON`); err != nil {
		return fmt.Errorf("foreign keys on: %w", err)
	}
	var on int
	if err := conn.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&on); err != nil {
		return fmt.Errorf("foreign keys on: %w", err)
	}
	if on != 1 {
		return errors.New("foreign keys on: enforcement is still off")
	}
	return nil
}

// migrateFile runs one migration on conn (foreign key enforcement off, see
// migrate) unless it is recorded already. The check happens inside the
// migration's (immediate) transaction, so two processes opening the same
// file cannot both run it. Before the commit, PRAGMA foreign_key_check must
// find no broken reference.
func (db *DB) migrateFile(ctx context.Context, conn *sql.Conn, name string) error {
	base := filepath.Base(name)
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()

	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM migrations WHERE name = ?`, base).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	script, err := fs.ReadFile(migrationFS, name)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, string(script)); err != nil {
		return err
	}
	if err := foreignKeyCheck(ctx, tx); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO migrations (name, applied_at) VALUES (?, ?)`,
		base, formatTime(db.Now())); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	db.Logger.InfoContext(ctx, "applied migration", slog.String("migration", base))
	return nil
}

// foreignKeyCheck runs PRAGMA foreign_key_check in tx and fails, naming
// the first, when a row references one that does not exist.
func foreignKeyCheck(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		return fmt.Errorf("foreign key check: %w", err)
	}
	defer func() { _ = rows.Close() }()
	if rows.Next() {
		var table, parent string
		var rowid sql.NullInt64
		var fkid int
		if err := rows.Scan(&table, &rowid, &parent, &fkid); err != nil {
			return fmt.Errorf("foreign key check: %w", err)
		}
		return fmt.Errorf("foreign key check: a row of %s references a missing row of %s", table, parent)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("foreign key check: %w", err)
	}
	return nil
}

// MigrationVersion returns the number of the newest applied migration (1 for
// 001_initial.sql), or 0 when none has run.
func (db *DB) MigrationVersion(ctx context.Context) (int, error) {
	var name sql.NullString
	if err := db.read.QueryRowContext(ctx, `SELECT MAX(name) FROM migrations`).Scan(&name); err != nil {
		return 0, fmt.Errorf("sqlite: migration version: %w", err)
	}
	if !name.Valid {
		return 0, nil
	}
	v, err := sqlshared.MigrationNumber(name.String)
	if err != nil {
		return 0, fmt.Errorf("sqlite: migration version: %w", err)
	}
	return v, nil
}

// Migrations returns the names of the applied migrations, oldest first.
func (db *DB) Migrations(ctx context.Context) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT name FROM migrations ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: migrations: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("sqlite: migrations: %w", err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: migrations: %w", err)
	}
	return names, nil
}

// formatTime renders t as stored: UTC, fixed width.
func formatTime(t time.Time) string {
	return t.UTC().Format(timeLayout)
}

// columns are how SQLite stores the values the shared row builders
// (adapter/internal/sqlshared) convert: times as formatTime's fixed-width
// UTC text, whose text order is time order, at full (nanosecond)
// precision; booleans as 0 or 1, SQLite having no boolean type.
var columns = sqlshared.Columns{
	Time: func(t time.Time) any { return formatTime(t) },
	Bool: func(b bool) any {
		if b {
			return 1
		}
		return 0
	},
}

// parseTime reads a stored time.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("sqlite: bad stored time: %w", err)
	}
	return t, nil
}

// constraint describes a failed SQLite constraint.
type constraint struct {
	// kind is "unique" (UNIQUE and PRIMARY KEY), "foreignkey" or "".
	kind string
	// columns names the columns of a unique constraint as SQLite reports
	// them, e.g. "referral.referrer_ods, referral.identifier_system,
	// referral.identifier_value".
	columns string
}

// constraintOf inspects err for a constraint violation. This is the boundary
// where SQLite's errors are recognised; callers turn the result into
// linkbridge errors with the context they have (see writer.formatError).
func constraintOf(err error) constraint {
	var se *sqlitedriver.Error
	if !errors.As(err, &se) {
		return constraint{}
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		msg := se.Error()
		const marker = "constraint failed: "
		i := strings.LastIndex(msg, marker)
		if i < 0 {
			return constraint{kind: "unique"}
		}
		cols := msg[i+len(marker):]
		if j := strings.LastIndex(cols, " ("); j >= 0 {
			cols = cols[:j] // drop the trailing " (2067)"
		}
		return constraint{kind: "unique", columns: cols}
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return constraint{kind: "foreignkey"}
	}
	return constraint{}
}
