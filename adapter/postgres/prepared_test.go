package postgres_test

import (
	"context"
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
	db := postgres.NewDB(newSchema(t))
	db.Logger = sqlsharedtest.NewLogger(t)
	db.MaxConns = 1
	if err := db.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
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
