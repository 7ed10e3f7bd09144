package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
)

// identifierUpgradeRows is a database as migrations 001–007 left it, with
// a row in every table that references referral: person P referred by
// practice A81001 (r1, with a link worker, consent, reasons and an
// acceptance) and by practice B82002 (r2), person Q by A81001 (r3); r1 has
// a plan, a contact, a measure, two events and a write-back.
var identifierUpgradeRows = []string{
	`INSERT INTO person (id, nhs_number, birth_date, gp_ods, created_at) VALUES
		('P', '9434765919', '1956-07-21', 'A81001', '2025-03-14T09:30:00.000000000Z'),
		('Q', '9434765870', '1960-01-01', 'A81001', '2025-03-14T09:30:00.000000000Z')`,
	`INSERT INTO referral (id, task_id, person_id, identifier_system, identifier_value, status, business_status,
		status_reason, request_status, priority, referrer_ods, service_ods, reasons, do_not_contact, authored_on,
		received_at, updated_at, version, link_worker_id, link_worker_name, consent, accepted_at, patient_id) VALUES
		('r1', 't1', 'P', 'urn:a', '1', 'accepted', 'triage', 'seen', 'active', 'urgent', 'A81001', 'Y02662',
			'[{"system":"http://snomed.info/sct","code":"423521000000102"}]', 1, '2025-03-14T08:30:00.000000000Z',
			'2025-03-14T09:30:00.000000000Z', '2025-03-15T09:30:00.000000000Z', 2, 'lw-1', 'Lee Worker', 'full',
			'2025-03-15T09:30:00.000000000Z', 'P'),
		('r2', 't2', 'P', 'urn:b', '2', 'requested', '', '', 'active', 'routine', 'B82002', 'Y09999', '[]', 0,
			'2025-03-14T08:30:00.000000000Z', '2025-03-14T09:31:00.000000000Z', '2025-03-14T09:31:00.000000000Z', 1,
			'', '', '', NULL, 'P2'),
		('r3', 't3', 'Q', 'urn:a', '3', 'requested', '', '', 'active', 'routine', 'A81001', 'Y02662', '[]', 0,
			'2025-03-14T08:30:00.000000000Z', '2025-03-14T09:32:00.000000000Z', '2025-03-14T09:32:00.000000000Z', 1,
			'', '', '', NULL, 'Q')`,
	`UPDATE referral SET rowid = rowid + 10 WHERE id = 'r2'`, // rowids with a gap, which the rebuild keeps
	`INSERT INTO case_plan (referral_id, body) VALUES ('r1', '{"goals":[]}')`,
	`INSERT INTO contact (id, referral_id, at, mode, minutes, attended, notes, created_at) VALUES
		('c1', 'r1', '2025-03-15T10:00:00.000000000Z', 'phone', 20, 1, 'first call', '2025-03-15T10:30:00.000000000Z')`,
	`INSERT INTO measure (id, referral_id, instrument, timepoint, items, total, metric, taken_at, created_at) VALUES
		('m1', 'r1', 'ONS4', 'baseline', '[5,6,7,3]', 21, 5.25, '2025-03-15T10:00:00.000000000Z', '2025-03-15T10:30:00.000000000Z')`,
	`INSERT INTO referral_event (referral_id, version, at, action, actor, status) VALUES
		('r1', 1, '2025-03-14T09:30:00.000000000Z', 'received', 'requester', 'requested'),
		('r1', 2, '2025-03-15T09:30:00.000000000Z', 'accept', 'lw-1', 'accepted')`,
	`INSERT INTO outbox (order_key, referral_id, resource_type, resource_id, version, body, state, available_at, created_at)
		VALUES ('P', 'r1', 'Task', 't1', 2, X'7B7D', 'pending', '2025-03-15T09:30:00.000000000Z', '2025-03-15T09:30:00.000000000Z')`,
}

// schemaState is what a test compares of a database across a migration:
// the schema's SQL, referral's columns and indexes, every table's foreign
// keys, and every row.
type schemaState struct {
	SQL     map[string]string   // sqlite_schema name -> sql
	Columns []string            // PRAGMA table_xinfo(referral)
	Indexes map[string]string   // referral's indexes: unique, origin, partial, key columns
	FKs     map[string][]string // table -> PRAGMA foreign_key_list
	Rows    map[string][]string // table -> its rows (referral's with rowid), sorted
}

// readSchemaState reads a schemaState through db (a database or a
// transaction). The migrations table's rows are left out (a migration adds
// one).
func readSchemaState(t *testing.T, db interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}) schemaState {
	t.Helper()
	ctx := context.Background()
	query := func(q string, args ...any) [][]string {
		t.Helper()
		rows, err := db.QueryContext(ctx, q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer func() { _ = rows.Close() }()
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		var out [][]string
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			row := make([]string, len(cols))
			for i, v := range vals {
				row[i] = fmt.Sprintf("%T:%v", v, v)
				if b, ok := v.([]byte); ok {
					row[i] = fmt.Sprintf("blob:%x", b)
				}
			}
			out = append(out, row)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	st := schemaState{SQL: map[string]string{}, Indexes: map[string]string{}, FKs: map[string][]string{}, Rows: map[string][]string{}}
	var tables []string
	for _, r := range query(`SELECT type, name, COALESCE(sql, '') FROM sqlite_schema`) {
		st.SQL[r[1]] = r[0] + " " + r[2]
		if r[0] == "string:table" && !strings.HasPrefix(r[1], "string:sqlite_") {
			tables = append(tables, strings.TrimPrefix(r[1], "string:"))
		}
	}
	for _, r := range query(`SELECT * FROM pragma_table_xinfo('referral')`) {
		st.Columns = append(st.Columns, strings.Join(r, " "))
	}
	for _, r := range query(`SELECT name, "unique", origin, partial FROM pragma_index_list('referral')`) {
		name := strings.TrimPrefix(r[0], "string:")
		var cols []string
		for _, c := range query(`SELECT name FROM pragma_index_info(?) ORDER BY seqno`, name) {
			cols = append(cols, c[0])
		}
		st.Indexes[name] = strings.Join(r[1:], " ") + " (" + strings.Join(cols, ", ") + ")"
	}
	for _, table := range tables {
		for _, r := range query(`SELECT * FROM pragma_foreign_key_list(?)`, table) {
			st.FKs[table] = append(st.FKs[table], strings.Join(r, " "))
		}
		if table == "migrations" {
			continue
		}
		q := `SELECT * FROM "` + table + `"`
		if table == "referral" {
			q = `SELECT rowid, * FROM referral`
		}
		for _, r := range query(q) {
			st.Rows[table] = append(st.Rows[table], strings.Join(r, "|"))
		}
		slices.Sort(st.Rows[table])
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

// migrationsBefore returns the statements that build a database as the
// migrations before next left it: the migrations table, then each
// migration's script and its row.
func migrationsBefore(t *testing.T, next string) []string {
	t.Helper()
	all, err := filepath.Glob(filepath.Join("migration", "*.sql"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(all)
	stmts := []string{`CREATE TABLE migrations (name TEXT NOT NULL PRIMARY KEY, applied_at TEXT NOT NULL) STRICT`}
	for _, p := range all {
		name := filepath.Base(p)
		if name >= next {
			break
		}
		script, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		stmts = append(stmts, string(script), `INSERT INTO migrations VALUES ('`+name+`', '2025-03-14T09:30:00.000000000Z')`)
	}
	return stmts
}

// oldDatabase creates the database at path as the migrations before next
// left it (migrationsBefore), with rows inserted after them, and returns
// it open for more; the caller closes it before opening the store.
func oldDatabase(t *testing.T, path, next string, rows ...string) *sql.DB {
	t.Helper()
	old, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range append(migrationsBefore(t, next), rows...) {
		if _, err := old.ExecContext(context.Background(), q); err != nil {
			_ = old.Close()
			t.Fatalf("building a database before %s: %v", next, err)
		}
	}
	return old
}

// TestUpgradeReferralIdentifier opens a database that migrations 001–007
// built and that holds rows in referral and in every table referencing
// it: migration 008 rebuilds referral with its identifier unique per
// referrer, and keeps every row (referral's rowids too), column, index,
// foreign key and the rest of the schema as they were; foreign keys are
// enforced again afterwards, on the rebuilt table too. Opening the
// database runs the migrations after 008 as well, so the state before is
// read with those applied, in a transaction rolled back afterwards: the
// comparison shows what 008 changes.
func TestUpgradeReferralIdentifier(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "linkbridge.db")
	old := oldDatabase(t, path, "008", identifierUpgradeRows...)
	tx, err := old.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range migrationsAfter(t, "008_referral_identifier_scope.sql") {
		script, err := os.ReadFile(filepath.Join("migration", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, string(script)); err != nil {
			t.Fatalf("%s on a 007 database: %v", name, err)
		}
	}
	before := readSchemaState(t, tx)
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	db := mustOpenPath(t, path)
	if names, err := db.Migrations(ctx); err != nil || !slices.Contains(names, "008_referral_identifier_scope.sql") {
		t.Fatalf("Migrations = %v, %v; want 008_referral_identifier_scope.sql applied", names, err)
	}
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	after := readSchemaState(t, raw)

	// Only the identifier's unique constraint differs: in referral's
	// definition and in the index that enforces it.
	want := before
	want.SQL = maps.Clone(before.SQL)
	want.SQL["string:referral"] = after.SQL["string:referral"]
	want.Indexes = maps.Clone(before.Indexes)
	const identifierIndex = "sqlite_autoindex_referral_3"
	if got := before.Indexes[identifierIndex]; got != "int64:1 string:u int64:0 (string:identifier_system, string:identifier_value)" {
		t.Fatalf("before the upgrade, %s is %s; want the unique identifier", identifierIndex, got)
	}
	want.Indexes[identifierIndex] = "int64:1 string:u int64:0 (string:referrer_ods, string:identifier_system, string:identifier_value)"
	if diff := cmp.Diff(want, after); diff != "" {
		t.Errorf("the upgrade changed more than the identifier's uniqueness (-want +got):\n%s", diff)
	}
	def := after.SQL["string:referral"]
	if !strings.Contains(def, "UNIQUE (referrer_ods, identifier_system, identifier_value)") ||
		strings.Contains(def, "UNIQUE (identifier_system, identifier_value)") || strings.Contains(def, "referral_new") {
		t.Errorf("referral after the upgrade: %s", def)
	}
	if len(after.Rows["referral"]) != 3 || len(after.Rows["contact"]) != 1 || len(after.Rows["outbox"]) != 1 {
		t.Errorf("rows after the upgrade: %v", after.Rows)
	}
	for _, check := range []string{`PRAGMA foreign_key_check`, `PRAGMA integrity_check`} {
		var res []string
		rows, err := raw.QueryContext(ctx, check)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var cols []any
			names, _ := rows.Columns()
			for range names {
				cols = append(cols, new(any))
			}
			if err := rows.Scan(cols...); err != nil {
				t.Fatal(err)
			}
			res = append(res, fmt.Sprint(*cols[0].(*any)))
		}
		_ = rows.Close()
		if check == `PRAGMA foreign_key_check` && len(res) != 0 || check == `PRAGMA integrity_check` && !slices.Equal(res, []string{"ok"}) {
			t.Errorf("%s after the upgrade: %v", check, res)
		}
	}

	// The identifier is now unique per referrer: B82002 and Y01234 may use
	// A81001's; A81001 using it again is a duplicate naming its referral.
	for i, ods := range []string{"B82002", "Y01234"} {
		in := intake(int64(i+1), "msg-"+ods)
		in.Referral.ReferrerODS, in.Referral.Identifier = ods, linkbridge.Identifier{System: "urn:a", Value: "1"}
		if err := db.CreateReferral(ctx, in); err != nil {
			t.Fatalf("CreateReferral(%s, A81001's identifier) after the upgrade: %v", ods, err)
		}
		if got, err := db.FindReferralByIdentifier(ctx, ods, in.Referral.Identifier); err != nil || got.ID != in.Referral.ID {
			t.Errorf("FindReferralByIdentifier(%s) = %v, %v; want %s", ods, got, err, in.Referral.ID)
		}
	}
	again := intake(3, "msg-again")
	again.Referral.ReferrerODS, again.Referral.Identifier = "A81001", linkbridge.Identifier{System: "urn:a", Value: "1"}
	err = db.CreateReferral(ctx, again)
	var le *linkbridge.Error
	if !errors.As(err, &le) || le.Code != linkbridge.EDUPLICATE || le.Existing != "ServiceRequest/r1" {
		t.Errorf("CreateReferral(A81001's identifier again) = %v; want EDUPLICATE naming ServiceRequest/r1", err)
	}
	if got, err := db.FindReferralByIdentifier(ctx, "A81001", linkbridge.Identifier{System: "urn:a", Value: "1"}); err != nil || got.ID != "r1" ||
		got.LinkWorker.Name != "Lee Worker" || got.Consent != linkbridge.ConsentFull || got.AcceptedAt.IsZero() {
		t.Errorf("FindReferralByIdentifier(A81001, urn:a|1) = %+v, %v; want r1 as stored", got, err)
	}
	if cr, err := db.GetCaseRecord(ctx, "r1"); err != nil || len(cr.Contacts) != 1 || len(cr.Measures) != 1 || len(cr.Events) != 2 {
		t.Errorf("GetCaseRecord(r1) after the upgrade = %+v, %v; want its contact, measure and events", cr, err)
	}

	// Foreign keys are enforced again: by the writer (a referral of a
	// person not stored) and on the rebuilt table (a contact of a referral
	// not stored, deleting a referral that rows reference).
	orphan := intake(4, "msg-orphan")
	orphan.NewPerson, orphan.Referral.PersonID = false, "p-missing"
	orphan.Resources = orphan.Resources[1:]
	if err := db.CreateReferral(ctx, orphan); linkbridge.ErrorCode(err) != linkbridge.ENOTFOUND {
		t.Errorf("CreateReferral of a person not stored after the upgrade = %v; want ENOTFOUND", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO contact (id, referral_id, at, mode, minutes, attended, created_at) VALUES ('c2', 'r-missing', '', 'phone', 1, 1, '')`,
		`DELETE FROM referral WHERE id = 'r1'`,
	} {
		if _, err := raw.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "FOREIGN KEY") {
			t.Errorf("%s after the upgrade: %v; want a foreign key violation", q, err)
		}
	}
}
