package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
)

// TestAccessRowsPerReferral: the access keys of a referral's own
// ServiceRequest, Task and Patient come from its row (migration 021), so
// intake writes resource_access rows only for its other resources, and a
// change only for the resources its row does not name; every one of them
// is still readable with the referral's keys and with no other.
func TestAccessRowsPerReferral(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "linkbridge.db")
	db := mustOpenPath(t, path)
	in := intake(1, "msg-1")
	now := in.Referral.ReceivedAt
	org := &linkbridge.Resource{Type: "Organization", ID: "org-1", VersionID: 1, LastUpdated: now,
		Body: []byte(`{"resourceType":"Organization","id":"org-1"}`)}
	in.Resources = append(in.Resources, org)
	if err := db.CreateReferral(ctx, in); err != nil {
		t.Fatalf("CreateReferral: %v", err)
	}
	ref := *in.Referral
	ref.Version, ref.UpdatedAt = 2, now.Add(time.Second)
	task := *in.Resources[2]
	task.VersionID, task.LastUpdated = 2, ref.UpdatedAt
	goal := &linkbridge.Resource{Type: "Goal", ID: "goal-1", VersionID: 1, LastUpdated: ref.UpdatedAt,
		Body: []byte(`{"resourceType":"Goal","id":"goal-1"}`)}
	if err := db.UpdateReferral(ctx, &linkbridge.ReferralChange{Referral: &ref, Resources: []*linkbridge.Resource{&task, goal}}); err != nil {
		t.Fatalf("UpdateReferral: %v", err)
	}

	ro, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ro.Close() }()
	rows, err := ro.QueryContext(ctx, `SELECT type || '/' || id || ' ' || key FROM resource_access ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{"Goal/goal-1 referrer|Y01234", "Goal/goal-1 service|RAT01",
		"Organization/org-1 referrer|Y01234", "Organization/org-1 service|RAT01"}
	if !slices.Equal(got, want) {
		t.Errorf("resource_access rows: %q, want %q", got, want)
	}

	for _, keys := range [][]string{linkbridge.ReferralAccessKeys(&ref)[:1], linkbridge.ReferralAccessKeys(&ref)[1:], {"referrer|B82002"}, {"service|Y09999"}} {
		mine := keys[0] == "referrer|Y01234" || keys[0] == "service|RAT01"
		for _, r := range []struct{ typ, id string }{
			{"Patient", ref.PatientID}, {"ServiceRequest", ref.ID}, {"Task", ref.TaskID}, {"Organization", "org-1"}, {"Goal", "goal-1"},
		} {
			res, err := db.SearchResources(ctx, &linkbridge.ResourceQuery{Type: r.typ, Count: 10, Access: &linkbridge.Access{Keys: keys}})
			if err != nil {
				t.Fatal(err)
			}
			if found := len(res.Resources) == 1 && res.Resources[0].ID == r.id; found != mine {
				t.Errorf("%v search %s: %d resources, want %s/%s: %v", keys, r.typ, len(res.Resources), r.typ, r.id, mine)
			}
		}
	}
}
