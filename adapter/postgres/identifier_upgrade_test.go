package postgres_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/linkbridge/linkbridge"
)

// schemaState is what a test compares of a schema across a migration:
// its constraints, indexes and referral's columns, and every row.
type schemaState struct {
	Constraints []string            // table, name, definition
	Indexes     []string            // table, name, definition
	Columns     []string            // referral's: name, type, nullable, default, collation
	Rows        map[string][]string // table -> its rows as JSON, sorted
}

// readSchemaState reads the schemaState of conn's schema (through a
// connection or a transaction). The schema_migrations table's rows are
// left out (a migration adds one).
func readSchemaState(t *testing.T, conn interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}) schemaState {
	t.Helper()
	ctx := context.Background()
	strs := func(q string) []string {
		t.Helper()
		rows, err := conn.Query(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		slices.Sort(out)
		return out
	}
	st := schemaState{
		Constraints: strs(`SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
			FROM pg_constraint WHERE connamespace = current_schema()::regnamespace`),
		Indexes: strs(`SELECT tablename || ' ' || indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = current_schema()`),
		Columns: strs(`SELECT concat_ws(' ', ordinal_position, column_name, data_type, is_nullable, column_default, collation_name)
			FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'referral'`),
		Rows: map[string][]string{},
	}
	for _, table := range strs(`SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'schema_migrations'`) {
		st.Rows[table] = strs(`SELECT to_jsonb(t)::text FROM ` + pgx.Identifier{table}.Sanitize() + ` t`)
	}
	return st
}

// migrationsAfter returns the names of the migrations numbered after name,
// in the order they run.
func migrationsAfter(t *testing.T, name string) []string {
	t.Helper()
	all, err := filepath.Glob(filepath.Join("migration", "*.sql"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range all {
		if base := filepath.Base(p); base > name {
			out = append(out, base)
		}
	}
	slices.Sort(out)
	return out
}

// migrationsBefore returns the statements that build a schema as the
// migrations before next left it: the migrations table, then each
// migration's script and its row.
func migrationsBefore(t *testing.T, next string) []string {
	t.Helper()
	all, err := filepath.Glob(filepath.Join("migration", "*.sql"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(all)
	stmts := []string{`CREATE TABLE schema_migrations (name text COLLATE "C" NOT NULL PRIMARY KEY, applied_at timestamptz NOT NULL)`}
	for _, p := range all {
		name := filepath.Base(p)
		if name >= next {
			break
		}
		script, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		stmts = append(stmts, string(script), `INSERT INTO schema_migrations VALUES ('`+name+`', '2025-03-14T09:30:00Z')`)
	}
	return stmts
}

// TestUpgradeReferralIdentifier opens a schema that migrations 001–007
// built and that holds rows in referral and in every table referencing
// it: migration 008 replaces the identifier's unique constraint with one
// per referrer, and keeps every row, column, index and other constraint
// (the foreign keys to referral among them) as they were. Opening the
// schema runs the migrations after 008 as well, so the state before is
// read with those applied, in a transaction rolled back afterwards: the
// comparison shows what 008 changes.
func TestUpgradeReferralIdentifier(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := newSchema(t)
	conn := rawConn(t, u)
	const at = "'2025-03-14T09:30:00Z'"
	stmts := migrationsBefore(t, "008")
	stmts = append(stmts,
		`INSERT INTO person (id, nhs_number, birth_date, gp_ods, created_at) VALUES
			('P', '9434765919', '1956-07-21', 'A81001', `+at+`), ('Q', '9434765870', '1960-01-01', 'A81001', `+at+`)`,
		`INSERT INTO referral (id, task_id, person_id, identifier_system, identifier_value, status, business_status,
			request_status, referrer_ods, service_ods, reasons, do_not_contact, authored_on, received_at, updated_at,
			version, link_worker_id, link_worker_name, consent, accepted_at, patient_id) VALUES
			('r1', 't1', 'P', 'urn:a', '1', 'accepted', 'triage', 'active', 'A81001', 'Y02662',
				'[{"system":"http://snomed.info/sct","code":"423521000000102"}]', true, `+at+`, `+at+`, `+at+`, 2,
				'lw-1', 'Lee Worker', 'full', `+at+`, 'P'),
			('r2', 't2', 'P', 'urn:b', '2', 'requested', '', 'active', 'B82002', 'Y09999', '[]', false, `+at+`, `+at+`, `+at+`, 1,
				'', '', '', NULL, 'P2'),
			('r3', 't3', 'Q', 'urn:a', '3', 'requested', '', 'active', 'A81001', 'Y02662', '[]', false, `+at+`, `+at+`, `+at+`, 1,
				'', '', '', NULL, 'Q')`,
		`INSERT INTO case_plan (referral_id, body) VALUES ('r1', '{"goals":[]}')`,
		`INSERT INTO contact (id, referral_id, at, mode, minutes, attended, notes, created_at)
			VALUES ('c1', 'r1', `+at+`, 'phone', 20, true, 'first call', `+at+`)`,
		`INSERT INTO measure (id, referral_id, instrument, timepoint, items, total, metric, taken_at, created_at)
			VALUES ('m1', 'r1', 'ONS4', 'baseline', '[5,6,7,3]', 21, 5.25, `+at+`, `+at+`)`,
		`INSERT INTO referral_event (referral_id, version, at, action, actor, status) VALUES
			('r1', 1, `+at+`, 'received', 'requester', 'requested'), ('r1', 2, `+at+`, 'accept', 'lw-1', 'accepted')`,
		`INSERT INTO outbox (order_key, referral_id, resource_type, resource_id, version, body, state, available_at, created_at)
			VALUES ('P', 'r1', 'Task', 't1', 2, '\x7b7d', 'pending', `+at+`, `+at+`)`,
	)
	for _, q := range stmts {
		if _, err := conn.Exec(ctx, q, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("building a 007 schema: %v", err)
		}
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range migrationsAfter(t, "008_referral_identifier_scope.sql") {
		script, err := os.ReadFile(filepath.Join("migration", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, string(script), pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("%s on a 007 schema: %v", name, err)
		}
	}
	before := readSchemaState(t, tx)
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	db := mustOpenURL(t, u)
	if names, err := db.Migrations(ctx); err != nil || !slices.Contains(names, "008_referral_identifier_scope.sql") {
		t.Fatalf("Migrations = %v, %v; want 008_referral_identifier_scope.sql applied", names, err)
	}
	after := readSchemaState(t, conn)

	// Only the identifier's unique constraint (and the index behind it)
	// differs.
	want := before
	replace := func(list []string, old, new string) []string {
		t.Helper()
		out := slices.Clone(list)
		i := slices.IndexFunc(out, func(s string) bool { return strings.HasPrefix(s, old) })
		if i < 0 {
			t.Fatalf("before the upgrade, nothing starts with %q: %v", old, list)
		}
		out[i] = new
		slices.Sort(out)
		return out
	}
	want.Constraints = replace(before.Constraints, "referral referral_identifier_key UNIQUE (identifier_system, identifier_value)",
		"referral referral_referrer_identifier_key UNIQUE (referrer_ods, identifier_system, identifier_value)")
	var schema string
	if err := conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	want.Indexes = replace(before.Indexes, "referral referral_identifier_key CREATE UNIQUE INDEX referral_identifier_key ON "+schema+".referral USING btree (identifier_system, identifier_value)",
		"referral referral_referrer_identifier_key CREATE UNIQUE INDEX referral_referrer_identifier_key ON "+schema+".referral USING btree (referrer_ods, identifier_system, identifier_value)")
	if diff := cmp.Diff(want, after); diff != "" {
		t.Errorf("the upgrade changed more than the identifier's uniqueness (-want +got):\n%s", diff)
	}
	for _, table := range []string{"case_plan", "contact", "measure", "referral_event", "outbox"} {
		if !slices.ContainsFunc(after.Constraints, func(c string) bool {
			return strings.HasPrefix(c, table+" ") && strings.Contains(c, "FOREIGN KEY (referral_id) REFERENCES referral(id)")
		}) {
			t.Errorf("after the upgrade, %s has no foreign key to referral: %v", table, after.Constraints)
		}
	}

	// The identifier is now unique per referrer: B82002 may use A81001's;
	// A81001 using it again is a duplicate naming its referral.
	other := intake("b", 1, nhsNumber(1), "msg-b")
	other.Referral.ReferrerODS, other.Referral.Identifier = "B82002", linkbridge.Identifier{System: "urn:a", Value: "1"}
	if err := db.CreateReferral(ctx, other); err != nil {
		t.Fatalf("CreateReferral(B82002, A81001's identifier) after the upgrade: %v", err)
	}
	again := intake("a", 2, nhsNumber(2), "msg-a")
	again.Referral.ReferrerODS, again.Referral.Identifier = "A81001", linkbridge.Identifier{System: "urn:a", Value: "1"}
	err = db.CreateReferral(ctx, again)
	var le *linkbridge.Error
	if !errors.As(err, &le) || le.Code != linkbridge.EDUPLICATE || le.Existing != "ServiceRequest/r1" {
		t.Errorf("CreateReferral(A81001's identifier again) = %v; want EDUPLICATE naming ServiceRequest/r1", err)
	}
	for ods, want := range map[string]string{"A81001": "r1", "B82002": other.Referral.ID} {
		if got, err := db.FindReferralByIdentifier(ctx, ods, linkbridge.Identifier{System: "urn:a", Value: "1"}); err != nil || got.ID != want {
			t.Errorf("FindReferralByIdentifier(%s, urn:a|1) = %v, %v; want %s", ods, got, err, want)
		}
	}
	if cr, err := db.GetCaseRecord(ctx, "r1"); err != nil || len(cr.Contacts) != 1 || len(cr.Measures) != 1 || len(cr.Events) != 2 ||
		cr.Referral.LinkWorker.Name != "Lee Worker" {
		t.Errorf("GetCaseRecord(r1) after the upgrade = %+v, %v; want it as stored", cr, err)
	}
}
