package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/postgres"
	"github.com/linkbridge/linkbridge/adapter/postgres/pgtest"
	"github.com/linkbridge/linkbridge/bench"
)

// oneByOne is a BatchStore that writes each op by its per-request method,
// each in its own transaction: what a batch must store the same as.
type oneByOne struct{ db *postgres.DB }

func (o oneByOne) WriteBatch(ctx context.Context, ops []linkbridge.BatchOp) error {
	for _, op := range ops {
		var err error
		if op.Intake != nil {
			err = o.db.CreateReferral(ctx, op.Intake)
		} else {
			err = o.db.UpdateReferral(ctx, op.Change)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// TestWriteBatchFolded: seeded journeys written by folded batches
// (batchfold.go) store, table by table and row by row, what the same
// intakes and changes store one by one (outbox ids but their order within an order key aside),
// without falling back to writing op by op; and a batch the fold cannot
// write (a stale change) falls back and fails as the change alone would.
func TestWriteBatchFolded(t *testing.T) {
	ctx := context.Background()
	open := func() (*postgres.DB, string) {
		u := pgtest.NewSchema(t)
		db := postgres.NewDB(u)
		if err := db.Open(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return db, u
	}
	folded, foldedURL := open()
	single, singleURL := open()
	cfg := func() bench.SeedConfig {
		return bench.SeedConfig{Referrals: 300, Batch: 40, Writers: 1, Seed: 7}
	}
	if _, err := bench.Seed(ctx, folded, cfg()); err != nil {
		t.Fatalf("seed by batches: %v", err)
	}
	if _, err := bench.Seed(ctx, oneByOne{single}, cfg()); err != nil {
		t.Fatalf("seed one by one: %v", err)
	}
	if n := folded.BatchFallbacks(); n != 0 {
		t.Errorf("%d seeded batches fell back to writing op by op; want every one folded", n)
	}
	want, got := tableDigests(t, singleURL), tableDigests(t, foldedURL)
	if len(want) < 15 {
		t.Fatalf("only %d tables digested", len(want))
	}
	for table, w := range want {
		if strings.HasSuffix(w, " 0") && table != "message" && table != "subscription" && table != "subscription_event" &&
			table != "document_delivery" && table != "endpoint_identity" {
			t.Errorf("table %s is empty after the seed: the comparison proves nothing for it", table)
		}
		if got[table] != w {
			t.Errorf("table %s: batches stored %s, one by one %s", table, got[table], w)
		}
	}

	// A change a version behind: the fold's referral update affects no
	// row, the batch is written again op by op, and fails as the change
	// would alone.
	ops := []linkbridge.BatchOp{{Change: staleChange(t, ctx, folded)}}
	before := folded.BatchFallbacks()
	err := folded.WriteBatch(ctx, ops)
	if linkbridge.ErrorCode(err) != linkbridge.EPRECONDITION {
		t.Fatalf("stale change in a batch: %v, want EPRECONDITION", err)
	}
	if n := folded.BatchFallbacks() - before; n != 1 {
		t.Errorf("stale batch fell back %d times, want once", n)
	}
}

// staleChange returns a change of a stored referral that skips a version.
func staleChange(t *testing.T, ctx context.Context, db *postgres.DB) *linkbridge.ReferralChange {
	t.Helper()
	res, err := db.SearchResources(ctx, &linkbridge.ResourceQuery{Type: "Task", Count: 1})
	if err != nil || len(res.Resources) == 0 {
		t.Fatalf("find a seeded Task: %v", err)
	}
	ref, err := db.FindReferralByTaskID(ctx, res.Resources[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	next := *ref
	next.Version += 2
	next.UpdatedAt = ref.UpdatedAt.Add(1)
	return &linkbridge.ReferralChange{Referral: &next}
}

// tableDigests returns, for each table of the schema at u but the
// migrations' record and the store's settings (the seed records itself
// there, not by WriteBatch), an md5 of its rows in order and their number.
func tableDigests(t *testing.T, u string) map[string]string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	rows, err := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() 
		AND tablename NOT IN ('schema_migrations', 'store_setting')`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	digest := func(rows string) string {
		var d string
		err := conn.QueryRow(ctx, `SELECT coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') || ' ' || count(*) FROM (`+
			rows+`) x`).Scan(&d)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	out := map[string]string{}
	for _, table := range tables {
		out[table] = digest(`SELECT * FROM ` + pgx.Identifier{table}.Sanitize())
	}
	// Outbox ids follow the order the seed's batches reached the writer,
	// which its parallel workers vary: the rows are compared without
	// them, and each order key's messages in id order.
	out["outbox"] = digest(`SELECT to_jsonb(o) - 'id' FROM outbox o`)
	out["outbox order"] = digest(`SELECT order_key, string_agg(resource_type || '/' || resource_id || '/' || version, ' ' ORDER BY id)
		FROM outbox GROUP BY order_key`)
	return out
}
