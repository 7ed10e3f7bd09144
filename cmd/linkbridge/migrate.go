package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/linkbridge/linkbridge/adapter/fhirjson"
)

// MigrateCommand is "linkbridge migrate": it brings the store's schema up to
// this binary's migrations and lists the applied ones. serve migrates at
// start-up as well; migrate lets an upgrade run them as a step of its own,
// before the new replicas start. On PostgreSQL it is safe to run while
// other replicas start or run (an advisory lock serialises migrations).
type MigrateCommand struct {
	Getenv         func(string) string
	Stdout, Stderr io.Writer
}

// migrationLister is what both stores offer to list applied migrations.
type migrationLister interface {
	Migrations(ctx context.Context) ([]string, error)
}

// Run parses flags, opens (and so migrates) the store and prints the
// applied migrations, oldest first.
func (c *MigrateCommand) Run(ctx context.Context, args []string) (err error) {
	fs := newFlags("migrate", c.Getenv, c.Stderr)
	fs.synopsis = "migrate [--db FILE|URL] [--create-db]"
	var db string
	var create bool
	dbFlag(fs, &db)
	fs.boolean(&create, "create-db", "CREATE_DB", false, "create the SQLite database file when it does not exist (as serve --create-db)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("migrate takes no arguments, got %q (the database is --db)", fs.Args())
	}
	if err := checkDBExists(db, create || db == defaultDB); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(c.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	store, err := openStore(ctx, db, logger)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, store.Close()) }()
	codec, err := fhirjson.New()
	if err != nil {
		return err
	}
	if err := reindex(ctx, store, codec, logger); err != nil {
		return err
	}
	ml, ok := store.(migrationLister)
	if !ok {
		return errors.New("this store does not list its migrations")
	}
	names, err := ml.Migrations(ctx)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(c.Stdout, "%s: %d migrations applied\n", redactDB(db), len(names)); err != nil {
		return err
	}
	for _, n := range names {
		if _, err := fmt.Fprintln(c.Stdout, n); err != nil {
			return err
		}
	}
	return nil
}
