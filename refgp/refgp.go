// Package refgp is the reference GP record endpoint: a small but real FHIR
// R4 server on its own SQLite file that stores what a GP record would
// receive from linkbridge's write-back, so the demo, the tests, the relay
// and integration testers have a known-good GP side.
//
// By default it is strict: it assigns its own ids, as GP record systems
// do, and enforces referential integrity, as HAPI FHIR does by default.
// Options.AllowClientIDs makes it lenient instead.
// Its CapabilityStatement (GET /fhir/metadata) advertises exactly what the
// mode does (updateCreate, referencePolicy, the delete interaction).
//
// It implements, as R4's RESTful API (http.html) sets them out:
//
//   - create: POST Type, with the endpoint's id (an id in the body is
//     ignored), and If-None-Exist on identifier= or _tag= (one match
//     answers 200 with it, several 412);
//   - update: PUT Type/id of a resource it holds, or held and deleted (the
//     update brings it back, 201). PUT of an id it never held
//     (update-as-create) is refused with 405, and done only with
//     AllowClientIDs;
//   - conditional update: PUT Type?identifier=system|value, or PUT
//     Type?_tag=system|code on a meta.tag for a type without an identifier
//     element such as Provenance. One match is updated when the body has no
//     id or the match's id, and refused with 400 (expression Type.id) when
//     it has another. No match creates a resource with the endpoint's id
//     when the body has no id; when it has one, that is update-as-create:
//     refused with 400 at Type.id (R4: "rejects it"), and done only
//     with AllowClientIDs (409 if another resource holds the id). Several
//     matches are 412;
//   - delete: DELETE Type/id answers 200 with an OperationOutcome, also
//     when the id is not held or already deleted. The delete is stored as a
//     version: read and vread answer 410 Gone, history lists it, searches
//     no longer find the resource, and a later conditional update that
//     matches nothing creates a new resource. A resource another held
//     resource still references is not deleted (409, naming the referrer)
//     unless AllowClientIDs. Options.NoDelete turns delete off (405) and
//     leaves it out of the CapabilityStatement; conditional delete is not
//     supported;
//   - read, vread, history, and search by _id, identifier, _tag (meta.tag),
//     patient/subject (a literal Patient reference, or patient.identifier
//     / patient:identifier for the NHS number that written-back resources
//     carry) and _lastUpdated; Patient?identifier= for the relay's patient
//     lookup.
//
// Referential integrity (strict mode): every relative literal reference
// (Type/id or Type/id/_history/n) anywhere in a created or updated
// resource outside contained resources must name a resource held here
// (and, for a versioned one, a version of it that exists), else the write
// is refused with 400, an issue of type processing naming each reference,
// with the element path of each as expression (e.g. CarePlan.goal[0]).
// Internal (#id), absolute and urn: references, logical ones (identifier
// or display only) and the assigner of a reference's identifier are not
// checked. With AllowClientIDs nothing is checked.
//
// Every write is validated with google/fhir (adapter/fhirjson), gets a new
// meta.versionId and meta.lastUpdated, answers 201 (created) or 200 with
// Location [base]/Type/id/_history/v, ETag W/"v" and the stored resource
// (no body with Prefer: return=minimal), and honours If-Match (412 on a stale version; delete honours it too).
// Writing the same content twice has one effect: the second write answers
// 200 with the current version and stores nothing. A write that carries an
// X-Linkbridge-Version lower than the one already held is stale and is
// answered the same way, so an earlier version never overwrites a later
// one.
//
// GET /patients/{id} is a plain HTML page of one patient's record as the
// multidisciplinary team would read it: referral status, contacts, plan,
// goals and outcome scores over time.
//
// Errors are OperationOutcomes: 400 invalid (with the element in
// expression; processing for a reference that does not resolve), 401
// without the configured bearer token, 404 unknown resource or type, 405
// update-as-create or delete not supported, 409 a delete of a referenced
// resource or a client id taken, 410 a deleted resource (issue type
// deleted), 412 stale If-Match or an ambiguous conditional write.
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
	// AllowClientIDs makes the endpoint lenient: it accepts client-assigned
	// ids (update-as-create, by PUT Type/id or by a conditional update that
	// matches nothing), accepts references it cannot resolve, and deletes
	// a resource that others reference. The default is strict: the
	// endpoint assigns its own ids and enforces referential integrity.
	AllowClientIDs bool
	// NoDelete turns the delete interaction off (405) and leaves it out of
	// the CapabilityStatement, like GP systems that do not delete.
	NoDelete bool
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
