// Package postgres implements linkbridge.Store, linkbridge.CaseStore and
// linkbridge.OutboxStore on PostgreSQL (pgx v5 with a pgxpool pool), for
// deployments that run several gateway replicas on one database.
//
// It keeps the semantics of adapter/sqlite exactly (both pass
// adapter/storetest); what differs is how it stays correct when several
// processes write at once, which SQLite never has to consider because its
// writes go through one writer:
//
//   - Idempotent intake rests on unique constraints (referral identifier
//     per referrer, message id, NHS number), never on a read before the write: a second
//     replica inserting the same referral waits for the first to commit and
//     then fails with SQLSTATE 23505, which is mapped to EDUPLICATE with
//     Error.Existing naming the stored row, as SQLite does.
//   - Versioned changes lock the referral row (UPDATE ... WHERE version =)
//     and the resources they replace (SELECT ... FOR UPDATE), so two
//     replicas changing one referral serialise and the second gets
//     EPRECONDITION.
//   - The outbox is shared by every replica's relay: see outbox.go.
//
// Migrations are embedded SQL files (migration/*.sql, numbered as SQLite's),
// run in order at Open, each in its own transaction with its record in the
// schema_migrations table, under a transaction-level advisory lock: replicas
// starting at once run each migration exactly once, the others wait and then
// find it recorded.
//
// The database URL is a libpq-style URL or key/value string as pgx accepts
// it, e.g. postgres://linkbridge@db.internal:5432/linkbridge?sslmode=verify-full;
// its search_path parameter selects the schema (tests use one schema each).
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

//go:embed migration/*.sql
var migrationFS embed.FS

// DefaultMaxConns is the default size of the connection pool of one process.
const DefaultMaxConns = 16

// DefaultStatementTimeout is the default DB.StatementTimeout: the
// gateway's HTTP write timeout, past which no answer reaches the client.
const DefaultStatementTimeout = 30 * time.Second

// cancelDeadline is how long a query whose context ended waits for the
// server to answer the cancel request before its connection is closed.
const cancelDeadline = time.Second

// Advisory lock classes (the first key of the two-key advisory lock
// functions; the second is a hash of what is locked, prefixed with the
// schema: advisory locks are per database, and several schemas, e.g. two
// deployments or parallel tests, may share one). Each class names one use,
// so that the uses never wait for one another. A hash collision only makes
// two keys share a lock, which costs waiting, never correctness.
const (
	// lockMigrate serialises migrations of one schema.
	lockMigrate int32 = 0x6c620001
	// lockClaim is held by the claim that is settling an order key's head.
	lockClaim int32 = 0x6c620002
	// lockEnqueue is held by the change that is enqueueing messages of an
	// order key, until it commits.
	lockEnqueue int32 = 0x6c620003
)

// Compile-time checks that DB implements the store contracts.
var (
	_ linkbridge.Store       = (*DB)(nil)
	_ linkbridge.CaseStore   = (*DB)(nil)
	_ linkbridge.OutboxStore = (*DB)(nil)
)

// DB is the PostgreSQL store. Create it with NewDB, set its fields, then call
// Open; or use the Open function. Its methods are safe for concurrent use, by
// any number of processes on one database.
type DB struct {
	// URL is the database URL (postgres:// or postgresql://) or key/value
	// connection string.
	URL string
	// Logger receives operational messages (ids only, never patient data).
	// Defaults to discarding them.
	Logger *slog.Logger
	// Now returns the current time; it stamps recorded messages and
	// migrations. Defaults to time.Now.
	Now func() time.Time
	// MaxConns caps the pool. Zero takes pool_max_conns from the URL, or
	// DefaultMaxConns when the URL does not set it.
	MaxConns int32
	// StatementTimeout is the connections' statement_timeout: PostgreSQL
	// cancels a statement that runs longer, so that no query outlives the
	// request that made it for long, whatever happens to the client. Zero
	// takes statement_timeout from the URL (e.g. ?statement_timeout=10s),
	// or DefaultStatementTimeout when the URL does not set it; a negative
	// timeout sets none. Migrations run without it.
	StatementTimeout time.Duration

	pool *pgxpool.Pool

	closeOnce sync.Once
	// batchFallbacks counts the batches whose folded write failed and
	// that WriteBatch wrote again op by op (tests read it).
	batchFallbacks atomic.Int64
}

// NewDB returns a DB for the database at url; call Open before using it.
func NewDB(url string) *DB {
	return &DB{URL: url}
}

// Open connects to the database at url, runs any pending migrations and
// returns the store. A nil logger discards messages.
func Open(ctx context.Context, url string, logger *slog.Logger) (*DB, error) {
	db := NewDB(url)
	db.Logger = logger
	if err := db.Open(ctx); err != nil {
		return nil, err
	}
	return db, nil
}

// IsURL reports whether s names a PostgreSQL database (a postgres:// or
// postgresql:// URL) rather than a SQLite file.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Open creates the pool, checks the server answers and runs pending
// migrations. Errors never repeat the URL, which may hold a password.
func (db *DB) Open(ctx context.Context) error {
	if db.Logger == nil {
		db.Logger = slog.New(slog.DiscardHandler)
	}
	if db.Now == nil {
		db.Now = time.Now
	}
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		// pgx's message may quote the connection string.
		return errors.New("postgres: open: the database URL cannot be parsed")
	}
	switch {
	case db.MaxConns > 0:
		cfg.MaxConns = db.MaxConns
	case !strings.Contains(db.URL, "pool_max_conns"):
		cfg.MaxConns = DefaultMaxConns
	}
	db.MaxConns = cfg.MaxConns
	cfg.ConnConfig.RuntimeParams["application_name"] = "linkbridge"
	switch {
	case db.StatementTimeout > 0:
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(db.StatementTimeout.Milliseconds(), 10)
	case db.StatementTimeout < 0:
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = "0"
	case cfg.ConnConfig.RuntimeParams["statement_timeout"] == "" && !strings.Contains(cfg.ConnConfig.RuntimeParams["options"], "statement_timeout"):
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(DefaultStatementTimeout.Milliseconds(), 10)
	}
	// A context that ends (the client went away, a deadline passed) sends
	// the server a cancel request at once, so that the statement stops
	// there and then and the connection stays in the pool. pgx's default
	// closes the connection instead (sending a cancel request as it goes,
	// since pgx 5.7; before, the statement ran on to its end), which costs
	// the pool a new connection for every cancelled query. The deadline
	// closes the connection should the server not answer the cancel.
	// Whatever the client does, StatementTimeout bounds the statement: a
	// request whose client went away behind a proxy that keeps the
	// connection open is never cancelled.
	cfg.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: cancelDeadline}
	}
	// Sessions run in UTC so that anything the server renders is UTC; the
	// adapter converts every time it reads to UTC regardless.
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("postgres: open: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return fmt.Errorf("postgres: open: %w", err)
	}
	db.pool = pool
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		db.pool = nil
		return err
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be returned. It
// is idempotent.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		if db.pool != nil {
			db.pool.Close()
		}
	})
	return nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// noStatementTimeout lifts DB.StatementTimeout for a migration's
// transaction: a migration may rewrite every row of a table, and waits for
// other replicas' migrations on the advisory lock.
const noStatementTimeout = `SET LOCAL statement_timeout = 0`

// migrate runs, in name order, every embedded migration not yet recorded in
// schema_migrations.
func (db *DB) migrate(ctx context.Context) error {
	// IF NOT EXISTS: two replicas may both get here first. A concurrent
	// CREATE TABLE IF NOT EXISTS can still fail on the catalog's unique
	// index, so it runs under the migration lock too.
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, noStatementTimeout); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))`, lockMigrate); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			name       text COLLATE "C" NOT NULL PRIMARY KEY,
			applied_at timestamptz NOT NULL
		)`)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: migrate: create schema_migrations: %w", err)
	}
	names, err := sqlshared.MigrationFiles(migrationFS)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	for _, name := range names {
		if err := db.migrateFile(ctx, name); err != nil {
			return fmt.Errorf("postgres: migrate %s: %w", path.Base(name), err)
		}
	}
	return nil
}

// migrateFile runs one migration unless it is recorded already. The check,
// the migration and its record share a transaction that first takes the
// schema's migration lock, so of several replicas starting at once exactly
// one runs it; the others wait for its commit and then find it recorded. A
// failed migration leaves no trace (PostgreSQL DDL is transactional).
func (db *DB) migrateFile(ctx context.Context, name string) error {
	base := path.Base(name)
	script, err := fs.ReadFile(migrationFS, name)
	if err != nil {
		return err
	}
	applied := false
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, noStatementTimeout); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))`, lockMigrate); err != nil {
			return err
		}
		var done bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = $1)`, base).Scan(&done); err != nil {
			return err
		}
		if done {
			return nil
		}
		// The simple protocol runs a multi-statement script.
		if _, err := tx.Exec(ctx, string(script), pgx.QueryExecModeSimpleProtocol); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES ($1, $2)`, base, db.Now()); err != nil {
			return err
		}
		applied = true
		return nil
	})
	if err != nil {
		return err
	}
	if applied {
		db.Logger.InfoContext(ctx, "applied migration", slog.String("migration", base))
	}
	return nil
}

// MigrationVersion returns the number of the newest applied migration (1 for
// 001_initial.sql), or 0 when none has run. SQLite and PostgreSQL keep the
// same numbering.
func (db *DB) MigrationVersion(ctx context.Context) (int, error) {
	var name *string
	if err := db.pool.QueryRow(ctx, `SELECT MAX(name) FROM schema_migrations`).Scan(&name); err != nil {
		return 0, fmt.Errorf("postgres: migration version: %w", err)
	}
	if name == nil {
		return 0, nil
	}
	v, err := sqlshared.MigrationNumber(*name)
	if err != nil {
		return 0, fmt.Errorf("postgres: migration version: %w", err)
	}
	return v, nil
}

// Migrations returns the names of the applied migrations, oldest first.
func (db *DB) Migrations(ctx context.Context) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT name FROM schema_migrations ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("postgres: migrations: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: migrations: %w", err)
	}
	return names, nil
}

// pgError returns the server's error inside err, or nil.
func pgError(err error) *pgconn.PgError {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe
	}
	return nil
}

// SQLSTATE codes the adapter recognises.
const (
	uniqueViolation      = "23505"
	foreignKeyViolation  = "23503"
	serializationFailure = "40001"
	deadlockDetected     = "40P01"
)

// maxTxAttempts bounds how often a write transaction is run when PostgreSQL
// aborts it for a deadlock or a serialization failure.
const maxTxAttempts = 3

// retryTx runs fn, a whole write transaction, again when PostgreSQL aborted
// it for a deadlock or a serialization failure: replicas writing at once can
// meet in lock cycles (PostgreSQL breaks one by aborting a transaction), and
// such an abort rolled everything back, so running the transaction again is
// safe. Other errors, and the last attempt's, are returned as they are.
func retryTx(ctx context.Context, fn func() error) error {
	var err error
	for range maxTxAttempts {
		err = fn()
		pe := pgError(err)
		if pe == nil || (pe.Code != deadlockDetected && pe.Code != serializationFailure) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// violation returns the name of the constraint that err violated when err is
// a violation of the given SQLSTATE, or "" otherwise. Migrations name every
// constraint that is mapped, so the names are stable.
func violation(err error, code string) (string, bool) {
	if pe := pgError(err); pe != nil && pe.Code == code {
		return pe.ConstraintName, true
	}
	return "", false
}

// utc returns t in UTC; pgx returns timestamptz values in the local zone.
func utc(t time.Time) time.Time { return t.UTC() }

// utcp returns *t in UTC, or the zero time for NULL.
func utcp(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// columns are how PostgreSQL stores the values the shared row builders
// (adapter/internal/sqlshared) convert: times as timestamptz and booleans as
// boolean, both sent as they are (pgx encodes them); timestamptz keeps
// microseconds.
var columns = sqlshared.Columns{
	Time:      func(t time.Time) any { return t },
	Bool:      func(b bool) any { return b },
	Precision: time.Microsecond,
}

// ceilMicro rounds t up to the next whole microsecond. PostgreSQL keeps
// microseconds and pgx truncates a bound it sends, which is right for "<="
// and ">" but not for "<" and ">=": a stored (whole-microsecond) time c is
// below t exactly when it is below ceilMicro(t), and at or after t exactly
// when it is at or after ceilMicro(t). So these bounds compare as SQLite's
// nanosecond-precision text does.
func ceilMicro(t time.Time) time.Time {
	if f := t.Truncate(time.Microsecond); !f.Equal(t) {
		return f.Add(time.Microsecond)
	}
	return t
}
