// Package refgp is the reference GP record endpoint: a small but real FHIR
// R4 server on its own SQLite file that stores what a GP record would
// receive from linkbridge's write-back, so the demo, the tests, the relay
// and integration testers have a known-good GP side.
//
// It implements, and its CapabilityStatement (GET /fhir/metadata)
// advertises exactly: create (POST, with If-None-Exist), update with client
// ids (PUT Type/id, update-as-create), conditional update (PUT
// Type?identifier=system|value, or PUT Type?_tag=system|code on a meta.tag
// for a type without an identifier element such as Provenance), read,
// vread, history, and search by _id, identifier, _tag (meta.tag),
// patient/subject (a literal Patient reference, or
// patient.identifier / patient:identifier for the NHS number that
// written-back resources carry) and _lastUpdated; Patient?identifier= for
// the relay's patient lookup. Every write is validated with google/fhir
// (adapter/fhirjson), gets a new meta.versionId and meta.lastUpdated, and
// honours If-Match (412 on a stale version). Writing the same content twice
// has one effect: the second write answers 200 with the current version and
// stores nothing. A write that carries an X-Linkbridge-Version lower than the
// one already held is stale and is answered the same way, so an earlier
// version never overwrites a later one.
//
// GET /patients/{id} is a plain HTML page of one patient's record as the
// multidisciplinary team would read it: referral status, contacts, plan,
// goals and outcome scores over time.
//
// Errors are OperationOutcomes: 400 invalid (with the element in
// expression), 401 without the configured bearer token, 404 unknown
// resource or type, 405 client ids refused (Options.RefuseClientIDs), 412
// stale If-Match or an ambiguous conditional write.
package refgp

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
	"sort"
	"time"

	"github.com/linkbridge/linkbridge/adapter/fhirjson"

	// TODO(layout): the SQL driver belongs in adapter/sqlite; refgp keeps
	// its own SQLite file for now, allowed by one exclusion in
	// .golangci.yml (sql-drivers-in-adapters).
	_ "modernc.org/sqlite" // the SQLite driver ("sqlite")
)

//go:embed migration/*.sql
var migrationFS embed.FS

// Types are the resource types the reference GP record accepts: the
// Patient the GP holds and every type linkbridge writes back.
var Types = []string{"Patient", "Task", "ServiceRequest", "Procedure", "CarePlan", "Goal", "Encounter", "Observation", "Provenance", "Condition", "Consent"}

// Options configure a Server.
type Options struct {
	// Token, if set, is the bearer token every request must carry
	// (Authorization: Bearer <token>); empty means no authentication.
	Token string
	// RefuseClientIDs makes the endpoint refuse update-as-create with a
	// client-assigned id (405) and advertise conditional update only, like
	// GP systems that assign their own ids.
	RefuseClientIDs bool
	// Now is the clock; defaults to time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Server is the reference GP record endpoint. Build it with Open; its
// Handler serves /fhir and /patients.
type Server struct {
	db    *sql.DB
	codec *fhirjson.Codec
	opts  Options
	log   *slog.Logger
}

// Open opens (creating if needed, mode 0600) the SQLite file at path and
// runs pending migrations.
func Open(ctx context.Context, path string, opts Options) (*Server, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("refgp: open: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("refgp: open: %w", err)
	}
	_ = f.Close()
	// A file: URI needs an absolute path: "file:name.db" would read name.db
	// as the authority and fail ("invalid uri authority").
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("refgp: open: %w", err)
	}
	q := url.Values{"_pragma": {"busy_timeout(5000)", "journal_mode(WAL)", "synchronous(NORMAL)"}, "_txlock": {"immediate"}}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("refgp: open: %w", err)
	}
	// One connection: every write (and its If-Match check) is serialised,
	// which is all a reference endpoint needs.
	db.SetMaxOpenConns(1)
	codec, err := fhirjson.New()
	if err != nil {
		return nil, errors.Join(err, db.Close())
	}
	s := &Server{db: db, codec: codec, opts: opts, log: opts.Logger}
	if err := s.migrate(ctx); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	return s, nil
}

// Close closes the database.
func (s *Server) Close() error { return s.db.Close() }

// migrate runs every embedded migration not yet recorded, each in its own
// transaction together with its record.
func (s *Server) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY)`); err != nil {
		return fmt.Errorf("refgp: migrate: %w", err)
	}
	names, err := fs.Glob(migrationFS, "migration/*.sql")
	if err != nil {
		return fmt.Errorf("refgp: migrate: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM migrations WHERE name = ?`, name).Scan(&n); err != nil {
			return fmt.Errorf("refgp: migrate: %w", err)
		}
		if n > 0 {
			continue
		}
		b, err := migrationFS.ReadFile(name)
		if err != nil {
			return fmt.Errorf("refgp: migrate: %w", err)
		}
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("refgp: migrate: %w", err)
		}
		if _, err := tx.ExecContext(ctx, string(b)); err != nil {
			return errors.Join(fmt.Errorf("refgp: migrate %s: %w", name, err), tx.Rollback())
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO migrations (name) VALUES (?)`, name); err != nil {
			return errors.Join(fmt.Errorf("refgp: migrate %s: %w", name, err), tx.Rollback())
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("refgp: migrate %s: %w", name, err)
		}
	}
	return nil
}

func supported(typ string) bool {
	for _, t := range Types {
		if t == typ {
			return true
		}
	}
	return false
}
