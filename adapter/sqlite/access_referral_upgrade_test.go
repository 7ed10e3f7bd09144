package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/linkbridge/linkbridge"
)

// accessPerReferralRows is a database as migrations 001–019 left it:
//
//   - r1 (A81001 to Y02662, Patient P) holds all its rows;
//   - r2 (B82002 to Y02662, Patient P) was entered in error before errors
//     revoked access, so it still holds its rows;
//   - r3 (A81001 to Y09999, Patient Q) lacks the service's row on its Task;
//   - r4 (C83003 to Y09999, Patient Q) holds all its rows: Q's row for
//     Y09999 stands for r3's key too;
//   - r5 (a self-referral to Y02662, Patient S) holds its service's rows
//     and, as migration 005 wrote them, rows of the key "referrer|";
//   - Organization o1 carries r1's keys.
var accessPerReferralRows = []string{
	`INSERT INTO person (id, nhs_number, birth_date, gp_ods, created_at) VALUES
		('P', '9434765919', '1956-07-21', 'A81001', '2025-03-14T09:30:00.000000000Z'),
		('Q', '9434765870', '1960-01-01', 'A81001', '2025-03-14T09:30:00.000000000Z'),
		('S', '9990000018', '1970-01-01', 'A81001', '2025-03-14T09:30:00.000000000Z')`,
	`INSERT INTO referral (id, task_id, person_id, patient_id, identifier_system, identifier_value, status, request_status,
		referrer_ods, service_ods, authored_on, received_at, updated_at, version) VALUES
		('r1', 't1', 'P', 'P', 'urn:a', '1', 'requested', 'active', 'A81001', 'Y02662', '2025-03-14T09:30:00.000000000Z', '2025-03-14T09:30:00.000000000Z', '2025-03-14T09:30:00.000000000Z', 1),
		('r2', 't2', 'P', 'P', 'urn:b', '2', 'entered-in-error', 'entered-in-error', 'B82002', 'Y02662', '2025-03-14T09:30:00.000000000Z', '2025-03-14T09:30:00.000000000Z', '2025-03-14T09:30:00.000000000Z', 2),
		('r3', 't3', 'Q', 'Q', 'urn:a', '3', 'requested', 'active', 'A81001', 'Y09999', '2025-03-14T09:30:00.000000000Z', '2025-03-14T09:30:00.000000000Z', '2025-03-14T09:30:00.000000000Z', 1),
		('r4', 't4', 'Q', 'Q', 'urn:c', '4', 'accepted', 'active', 'C83003', 'Y09999', '2025-03-14T09:30:00.000000000Z', '2025-03-14T09:30:00.000000000Z', '2025-03-14T09:30:00.000000000Z', 2),
		('r5', 't5', 'S', 'S', 'urn:d', '5', 'requested', 'active', '', 'Y02662', '2025-03-14T09:30:00.000000000Z', '2025-03-14T09:30:00.000000000Z', '2025-03-14T09:30:00.000000000Z', 1)`,
}

// accessPerReferralGrants are the resource_access rows of
// accessPerReferralRows: type, id and keys.
var accessPerReferralGrants = []struct {
	typ, id string
	keys    []string
}{
	{"ServiceRequest", "r1", []string{"referrer|A81001", "service|Y02662"}},
	{"Task", "t1", []string{"referrer|A81001", "service|Y02662"}},
	{"Patient", "P", []string{"referrer|A81001", "service|Y02662", "referrer|B82002"}},
	{"Organization", "o1", []string{"referrer|A81001", "service|Y02662"}},
	{"ServiceRequest", "r2", []string{"referrer|B82002", "service|Y02662"}},
	{"Task", "t2", []string{"referrer|B82002", "service|Y02662"}},
	{"ServiceRequest", "r3", []string{"referrer|A81001", "service|Y09999"}},
	{"Task", "t3", []string{"referrer|A81001"}},
	{"Patient", "Q", []string{"referrer|A81001", "service|Y09999", "referrer|C83003"}},
	{"ServiceRequest", "r4", []string{"referrer|C83003", "service|Y09999"}},
	{"Task", "t4", []string{"referrer|C83003", "service|Y09999"}},
	{"ServiceRequest", "r5", []string{"referrer|", "service|Y02662"}},
	{"Task", "t5", []string{"referrer|", "service|Y02662"}},
	{"Patient", "S", []string{"referrer|", "service|Y02662"}},
}

// TestUpgradeAccessPerReferral opens a database that migrations 001–019
// built (accessPerReferralRows): after migration 021 every set of access
// keys reaches exactly the resources it reached through resource_access
// before, by search and by id, while the rows the referral rows now stand
// for are gone.
func TestUpgradeAccessPerReferral(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "linkbridge.db")
	old, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	stmts := []string{`CREATE TABLE migrations (name TEXT NOT NULL PRIMARY KEY, applied_at TEXT NOT NULL) STRICT`}
	names, err := filepath.Glob(filepath.Join("migration", "*.sql"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range names {
		name := filepath.Base(p)
		if name >= "021" {
			continue
		}
		script, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		stmts = append(stmts, string(script), `INSERT INTO migrations VALUES ('`+name+`', '2025-03-14T09:30:00.000000000Z')`)
	}
	stmts = append(stmts, accessPerReferralRows...)
	for _, q := range stmts {
		if _, err := old.ExecContext(ctx, q); err != nil {
			t.Fatalf("building a 019 database: %v", err)
		}
	}
	for _, g := range accessPerReferralGrants {
		if _, err := old.ExecContext(ctx, `INSERT INTO resource (type, id, version_id, last_updated, body) VALUES (?, ?, 1, '2025-03-14T09:30:00.000000000Z', X'7B7D')`, g.typ, g.id); err != nil {
			t.Fatalf("building a 019 database: %v", err)
		}
		for _, k := range g.keys {
			if _, err := old.ExecContext(ctx, `INSERT INTO resource_access (type, key, id) VALUES (?, ?, ?)`, g.typ, k, g.id); err != nil {
				t.Fatalf("building a 019 database: %v", err)
			}
		}
	}
	// What each set of keys reached before, read from resource_access as
	// SearchResources did.
	scopes := [][]string{
		{"referrer|A81001"}, {"referrer|B82002"}, {"referrer|C83003"}, {"referrer|"},
		{"service|Y02662"}, {"service|Y09999"}, {"service|"},
		{"referrer|A81001", "referrer|C83003"}, // an MDT viewer of two practices
	}
	types := []string{"ServiceRequest", "Task", "Patient", "Organization"}
	before := map[string][]string{}
	for _, keys := range scopes {
		for _, typ := range types {
			rows, err := old.QueryContext(ctx, `SELECT DISTINCT id FROM resource_access WHERE type = ? AND key IN (`+
				strings.TrimSuffix(strings.Repeat("?, ", len(keys)), ", ")+`) ORDER BY id`, append([]any{typ}, anys(keys)...)...)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			before[typ+" "+strings.Join(keys, ",")] = ids
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	db := mustOpenPath(t, path)
	for _, keys := range scopes {
		for _, typ := range types {
			want := before[typ+" "+strings.Join(keys, ",")]
			res, err := db.SearchResources(ctx, &linkbridge.ResourceQuery{Type: typ, Count: 100, Access: &linkbridge.Access{Keys: keys}})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range res.Resources {
				got = append(got, r.ID)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("after upgrade, %v search %s: %v, want %v (before)", keys, typ, got, want)
			}
			// Each resource by id: the check a read makes.
			for _, g := range accessPerReferralGrants {
				if g.typ != typ {
					continue
				}
				res, err := db.SearchResources(ctx, &linkbridge.ResourceQuery{Type: typ, IDs: []string{g.id}, Count: 1, Access: &linkbridge.Access{Keys: keys}})
				if err != nil {
					t.Fatal(err)
				}
				if got, want := res.Total > 0, slices.Contains(want, g.id); got != want {
					t.Errorf("after upgrade, %v reaches %s/%s: %v, want %v (before)", keys, typ, g.id, got, want)
				}
			}
		}
	}

	reach := func(keys []string, typ, id string) bool {
		t.Helper()
		res, err := db.SearchResources(ctx, &linkbridge.ResourceQuery{Type: typ, IDs: []string{id}, Count: 1, Access: &linkbridge.Access{Keys: keys}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Total > 0
	}
	// r4 entered in error: it grants nothing any more, but Q stays readable
	// by Y09999 through r3, as RevokeAccessQuery left it before.
	r4, err := db.FindReferral(ctx, "r4")
	if err != nil {
		t.Fatal(err)
	}
	r4.Status, r4.RequestStatus, r4.Version = linkbridge.TaskEnteredInError, "entered-in-error", r4.Version+1
	if err := db.UpdateReferral(ctx, &linkbridge.ReferralChange{Referral: r4}); err != nil {
		t.Fatalf("UpdateReferral(r4 entered in error): %v", err)
	}
	// A change of r3 (marked 0) grants its keys to the Task it writes with
	// rows, as every change did: t3 becomes readable by Y09999.
	r3, err := db.FindReferral(ctx, "r3")
	if err != nil {
		t.Fatal(err)
	}
	r3.Version++
	t3 := &linkbridge.Resource{Type: "Task", ID: "t3", VersionID: 2, LastUpdated: r3.UpdatedAt, Body: []byte(`{"resourceType":"Task","id":"t3"}`)}
	if err := db.UpdateReferral(ctx, &linkbridge.ReferralChange{Referral: r3, Resources: []*linkbridge.Resource{t3}}); err != nil {
		t.Fatalf("UpdateReferral(r3): %v", err)
	}
	for _, c := range []struct {
		keys    []string
		typ, id string
		want    bool
	}{
		{[]string{"service|Y09999"}, "Patient", "Q", true},
		{[]string{"referrer|A81001"}, "Patient", "Q", true},
		{[]string{"referrer|C83003"}, "Patient", "Q", false},
		{[]string{"service|Y09999"}, "Task", "t4", false},
		{[]string{"referrer|C83003"}, "ServiceRequest", "r4", false},
		{[]string{"service|Y09999"}, "ServiceRequest", "r3", true},
		{[]string{"service|Y09999"}, "Task", "t3", true},
	} {
		if got := reach(c.keys, c.typ, c.id); got != c.want {
			t.Errorf("after the changes of r4 and r3, %v reaches %s/%s: %v, want %v", c.keys, c.typ, c.id, got, c.want)
		}
	}

	// The rows r1's and r4's rows stood for are gone; r2's (in error), r3's
	// (marked 0), Q's for Y09999 (r3's key too), o1's and the key
	// "referrer|" are kept.
	conn, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	var left []string
	rows, err := conn.QueryContext(ctx, `SELECT type || '/' || id || ' ' || key FROM resource_access ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		left = append(left, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	wantLeft := []string{
		"Organization/o1 referrer|A81001", "Organization/o1 service|Y02662",
		"Patient/P referrer|B82002",
		"Patient/Q referrer|A81001", "Patient/Q service|Y09999",
		"Patient/S referrer|",
		"ServiceRequest/r2 referrer|B82002", "ServiceRequest/r2 service|Y02662",
		"ServiceRequest/r3 referrer|A81001", "ServiceRequest/r3 service|Y09999",
		"ServiceRequest/r5 referrer|",
		"Task/t2 referrer|B82002", "Task/t2 service|Y02662",
		"Task/t3 referrer|A81001", "Task/t3 service|Y09999",
		"Task/t5 referrer|",
	}
	if !slices.Equal(left, wantLeft) {
		t.Errorf("resource_access after upgrade:\n%s\nwant\n%s", strings.Join(left, "\n"), strings.Join(wantLeft, "\n"))
	}
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
