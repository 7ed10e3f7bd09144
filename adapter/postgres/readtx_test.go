package postgres_test

import (
	"context"
	"testing"
	"time"
)

// TestSlowReadCommits: a read transaction that runs longer than the second
// readTx allows for ending it still commits (the second starts when the
// reads are done; it used to start with them, so any read over a second
// failed with "context already done" — a search on a loaded server among
// them).
func TestSlowReadCommits(t *testing.T) {
	t.Parallel()
	db := mustOpenURL(t, newSchema(t))
	if err := db.ReadTxSleep(context.Background(), 1500*time.Millisecond); err != nil {
		t.Fatalf("a 1.5 s read failed: %v", err)
	}
}
