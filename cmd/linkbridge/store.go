package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"

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

// dbFlagHelp is the help text of every --db flag.
const dbFlagHelp = "SQLite database file, or a postgres:// (postgresql://) URL for PostgreSQL (LINKBRIDGE_DB)"

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
