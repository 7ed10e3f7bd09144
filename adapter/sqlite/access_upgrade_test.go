package sqlite_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/linkbridge/linkbridge"
)

// accessUpgradeRows is a database as migrations 001–004 left it: person P
// referred by practice A81001 (referral r1) and by practice B82002 (r2),
// person Q referred by A81001 only (r3). Each referral has its
// ServiceRequest and Task (both indexed by patient); r1 has a contact's
// Encounter (based-on its ServiceRequest) and a write-back of it; P has a
// Condition no referral can be told to own; Q has one that is r3's.
var accessUpgradeRows = []string{
	`INSERT INTO person (id, nhs_number, birth_date, gp_ods, created_at) VALUES
		('P', '9434765919', '1956-07-21', 'A81001', '2025-03-14T09:30:00.000000000Z'),
		('Q', '9434765870', '1960-01-01', 'A81001', '2025-03-14T09:30:00.000000000Z')`,
	`INSERT INTO referral (id, task_id, person_id, identifier_system, identifier_value, status, request_status,
		referrer_ods, service_ods, authored_on, received_at, updated_at, version) VALUES
		('r1', 't1', 'P', 'urn:a', '1', 'requested', 'active', 'A81001', 'Y02662', '2025-03-14T09:30:00.000000000Z', '2025-03-14T09:30:00.000000000Z', '2025-03-14T09:30:00.000000000Z', 1),
		('r2', 't2', 'P', 'urn:b', '2', 'requested', 'active', 'B82002', 'Y09999', '2025-03-14T09:30:00.000000000Z', '2025-03-14T09:30:00.000000000Z', '2025-03-14T09:30:00.000000000Z', 1),
		('r3', 't3', 'Q', 'urn:a', '3', 'requested', 'active', 'A81001', 'Y02662', '2025-03-14T09:30:00.000000000Z', '2025-03-14T09:30:00.000000000Z', '2025-03-14T09:30:00.000000000Z', 1)`,
}

// accessUpgradeResources are the stored resources: type, id and the
// (name, value) search parameters.
var accessUpgradeResources = []struct {
	typ, id string
	params  [][2]string
}{
	{"Patient", "P", nil},
	{"Patient", "Q", nil},
	{"ServiceRequest", "r1", [][2]string{{"patient", "Patient/P"}}},
	{"Task", "t1", [][2]string{{"patient", "Patient/P"}, {"focus", "ServiceRequest/r1"}}},
	{"ServiceRequest", "r2", [][2]string{{"patient", "Patient/P"}}},
	{"Task", "t2", [][2]string{{"patient", "Patient/P"}, {"focus", "ServiceRequest/r2"}}},
	{"ServiceRequest", "r3", [][2]string{{"patient", "Patient/Q"}}},
	{"Task", "t3", [][2]string{{"patient", "Patient/Q"}, {"focus", "ServiceRequest/r3"}}},
	{"Encounter", "e1", [][2]string{{"patient", "Patient/P"}, {"based-on", "ServiceRequest/r1"}}},
	{"Condition", "cP", [][2]string{{"patient", "Patient/P"}}},
	{"Condition", "cQ", [][2]string{{"patient", "Patient/Q"}}},
}

// TestUpgradeAccess opens a database that migrations 001–004 built and
// that holds referrals of one person by two practices: migration 005 gives
// each stored resource the access keys of its own referral only, never
// those of another referral of the same person.
func TestUpgradeAccess(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "linkbridge.db")
	old := oldDatabase(t, path, "005", append(accessUpgradeRows, `INSERT INTO outbox (order_key, referral_id, resource_type, resource_id, version, body, state,
		available_at, created_at) VALUES ('P', 'r1', 'Encounter', 'e1', 1, X'7B7D', 'delivered',
		'2025-03-14T09:30:00.000000000Z', '2025-03-14T09:30:00.000000000Z')`)...)
	for _, r := range accessUpgradeResources {
		if _, err := old.ExecContext(ctx, `INSERT INTO resource (type, id, version_id, last_updated, body) VALUES (?, ?, 1, '2025-03-14T09:30:00.000000000Z', X'7B7D')`, r.typ, r.id); err != nil {
			t.Fatalf("building a 004 database: %v", err)
		}
		for _, p := range r.params {
			if _, err := old.ExecContext(ctx, `INSERT INTO search_param (type, id, name, value) VALUES (?, ?, ?, ?)`, r.typ, r.id, p[0], p[1]); err != nil {
				t.Fatalf("building a 004 database: %v", err)
			}
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	db := mustOpenPath(t, path)
	visible := func(key, typ string) []string {
		t.Helper()
		res, err := db.SearchResources(ctx, &linkbridge.ResourceQuery{Type: typ, Count: 100, Access: &linkbridge.Access{Keys: []string{key}}})
		if err != nil {
			t.Fatalf("SearchResources(%s as %s) returned unexpected error: %v", typ, key, err)
		}
		var ids []string
		for _, r := range res.Resources {
			ids = append(ids, r.ID)
		}
		slices.Sort(ids)
		return ids
	}
	for _, tc := range []struct {
		key, typ string
		want     []string
	}{
		{linkbridge.ReferrerAccessKey("A81001"), "ServiceRequest", []string{"r1", "r3"}},
		{linkbridge.ReferrerAccessKey("A81001"), "Task", []string{"t1", "t3"}},
		{linkbridge.ReferrerAccessKey("A81001"), "Patient", []string{"P", "Q"}},
		{linkbridge.ReferrerAccessKey("A81001"), "Encounter", []string{"e1"}},
		{linkbridge.ReferrerAccessKey("A81001"), "Condition", []string{"cQ"}},
		// B82002 referred P too: it sees P and its own referral, not A81001's.
		{linkbridge.ReferrerAccessKey("B82002"), "ServiceRequest", []string{"r2"}},
		{linkbridge.ReferrerAccessKey("B82002"), "Task", []string{"t2"}},
		{linkbridge.ReferrerAccessKey("B82002"), "Patient", []string{"P"}},
		{linkbridge.ReferrerAccessKey("B82002"), "Encounter", nil},
		{linkbridge.ReferrerAccessKey("B82002"), "Condition", nil},
		{linkbridge.ServiceAccessKey("Y09999"), "ServiceRequest", []string{"r2"}},
		{linkbridge.ServiceAccessKey("Y09999"), "Encounter", nil},
		{linkbridge.ServiceAccessKey("Y02662"), "Task", []string{"t1", "t3"}},
		{linkbridge.ServiceAccessKey("Y02662"), "Encounter", []string{"e1"}},
	} {
		if got := visible(tc.key, tc.typ); !slices.Equal(got, tc.want) {
			t.Errorf("after upgrade, %s reaches %s %v, want %v", tc.key, tc.typ, got, tc.want)
		}
	}
}
