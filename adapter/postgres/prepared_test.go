package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared/sqlsharedtest"
	"github.com/linkbridge/linkbridge/adapter/postgres"
)

// TestEndpointIdentityPlannedPerCall checks that the relay's
// endpoint-identity lookup is never a named prepared statement: pgx
// prepares a statement once per connection, and PostgreSQL then switches
// it to a generic plan, which made on an empty endpoint_identity (a new
// deployment) hashed the whole table at every lookup
// (docs/performance.md#postgresqls-drain-at-100k-plans-made-on-an-empty-table-2026-12-05).
// The lookup runs more often than the five executions after which the
// generic plan is taken, on a pool of one connection whose prepared
// statements are then listed; a read that is prepared shows that the list
// is the session's.
func TestEndpointIdentityPlannedPerCall(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := oneConnStore(t)
	const endpoint = "https://gp.example/fhir"
	if err := db.RecordEndpointIdentity(ctx, linkbridge.EndpointIdentity{Endpoint: endpoint, ResourceType: "Task",
		ResourceID: "t1", EndpointID: "gp-1", Version: 1}); err != nil {
		t.Fatal(err)
	}
	keys := []linkbridge.ResourceKey{{Type: "Task", ID: "t1"}, {Type: "Task", ID: "t2"}}
	for range 8 {
		got, err := db.EndpointIdentities(ctx, endpoint, keys)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[keys[0]].EndpointID != "gp-1" {
			t.Fatalf("EndpointIdentities = %+v, want Task/t1 as gp-1 only", got)
		}
	}
	if _, err := db.ReadResource(ctx, "Task", "t1"); linkbridge.ErrorCode(err) != linkbridge.ENOTFOUND {
		t.Fatalf("ReadResource = %v, want not found", err)
	}
	prepared, err := db.PreparedStatements(ctx)
	if err != nil {
		t.Fatal(err)
	}
	read := false
	for _, sql := range prepared {
		if strings.Contains(sql, "endpoint_identity e") {
			t.Errorf("the endpoint-identity lookup is a prepared statement:\n%s", sql)
		}
		read = read || strings.Contains(sql, "FROM resource")
	}
	if !read {
		t.Errorf("ReadResource's statement is not among the session's prepared statements %q: the list is not the session's", prepared)
	}
}

// TestWriteStatementsPlannedOnce checks that the statements of a change
// (UpdateReferral: reading and locking the resources it replaces, deleting
// the search values a new version no longer has, and the rest) take
// PostgreSQL's generic plan after its five custom ones, as point
// statements do: a statement planned again at every call cost 17% of the
// server's time in a seed, the lock as a join with unnest over arrays of
// keys and the delete likewise (docs/performance.md#statements-planned-once).
// Twelve changes each replace the Task with a new status value, on a pool
// of one connection, whose prepared statements are then listed.
func TestWriteStatementsPlannedOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := oneConnStore(t)
	in := fullIntake(1)
	if err := db.CreateReferral(ctx, in); err != nil {
		t.Fatal(err)
	}
	const changes = 12
	for v := 2; v < 2+changes; v++ {
		ch := taskChange(in, v)
		ch.Resources[0].Params = []linkbridge.SearchParam{{Name: "status", Value: fmt.Sprintf("s%d", v)}}
		if err := db.UpdateReferral(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}
	plans, err := db.PreparedPlans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var lock, del bool
	for _, p := range plans {
		sql := strings.Join(strings.Fields(p.SQL), " ")
		lock = lock || strings.Contains(sql, "FROM resource") && strings.Contains(sql, "FOR UPDATE")
		del = del || strings.HasPrefix(sql, "DELETE FROM search_param")
		if p.Custom > 5 {
			t.Errorf("planned %d times (%d generic plans) over %d changes:\n%s", p.Custom, p.Generic, changes, sql)
		}
	}
	if !lock || !del {
		t.Errorf("the lock of the replaced resources (%v) or the delete of their search values (%v) is not among the session's prepared statements", lock, del)
	}
}

// oneConnStore opens a store on a new schema with a pool of one
// connection, so that the prepared statements of its one session are all
// the store has prepared.
func oneConnStore(t *testing.T) *postgres.DB {
	t.Helper()
	db := postgres.NewDB(newSchema(t))
	db.Logger = sqlsharedtest.NewLogger(t)
	db.MaxConns = 1
	if err := db.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}
