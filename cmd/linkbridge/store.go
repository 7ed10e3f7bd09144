package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/adapter/postgres"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
	"github.com/linkbridge/linkbridge/intake"
)

// appStore is what the commands need of a store; both backends provide it.
type appStore interface {
	linkbridge.Store
	linkbridge.CaseStore
	linkbridge.OutboxStore
	linkbridge.EndpointIdentityStore
	linkbridge.IndexStore
	linkbridge.SettingStore
}

// defaultDB is the default --db: a SQLite file in the working directory.
const defaultDB = "linkbridge.db"

// dbFlagUsage is the help text of every --db flag.
const dbFlagUsage = "SQLite database file, or a postgres:// (postgresql://) URL for PostgreSQL"

// dbFlag binds the --db flag of a command that works on an existing store.
func dbFlag(f *commandFlags, p *string) {
	f.str(p, "db", "DB", defaultDB, dbFlagUsage)
}

// checkDBExists refuses a SQLite file that does not exist unless create
// is set: opening one would create a new, empty database (and its
// directories) where a mistyped path was meant to find the real one.
// PostgreSQL URLs pass: the server refuses a database that does not exist.
func checkDBExists(db string, create bool) error {
	if create || postgres.IsURL(db) {
		return nil
	}
	if _, err := os.Stat(db); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no database at %s: check --db (LINKBRIDGE_DB); to start a new one, add --create-db (LINKBRIDGE_CREATE_DB=true)", db)
	} else if err != nil {
		return fmt.Errorf("--db: %w", err)
	}
	return nil
}

// openExistingStore opens a store that must already exist (operator
// commands: outbox, report).
func openExistingStore(ctx context.Context, db string, logger *slog.Logger) (appStore, error) {
	if err := checkDBExists(db, false); err != nil {
		return nil, err
	}
	return openStore(ctx, db, logger)
}

// openStore opens the store that db names: PostgreSQL for a postgres:// or
// postgresql:// URL, otherwise the SQLite file at that path. Either runs its
// pending migrations.
func openStore(ctx context.Context, db string, logger *slog.Logger) (appStore, error) {
	if postgres.IsURL(db) {
		return postgres.Open(ctx, db, logger)
	}
	return sqlite.Open(ctx, db, logger)
}

// reindex brings the store's search index up to this binary's search
// parameter table (intake.Reindex): a no-op unless the table changed since
// the index was built.
func reindex(ctx context.Context, db appStore, codec *fhirjson.Codec, logger *slog.Logger) error {
	if _, err := intake.Reindex(ctx, db, codec, logger); err != nil {
		return fmt.Errorf("search index: %w", err)
	}
	return nil
}

// redactDB returns db fit for a log line: a PostgreSQL URL without its
// password (and without query parameters, which may carry one), a SQLite
// path as it is.
func redactDB(db string) string {
	if !postgres.IsURL(db) {
		return db
	}
	u, err := url.Parse(db)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	u.RawQuery = ""
	return u.String()
}
