package sqlite_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
)

// TestReadInterrupted: a context that ends interrupts a read in SQLite
// (modernc.org/sqlite calls sqlite3_interrupt when the context of a
// statement ends) within a second, and the read pool serves searches
// afterwards. A search is too fast to cancel midway, so the read is a
// statement that never ends by itself, run as searches run (a read
// transaction on the read pool).
func TestReadInterrupted(t *testing.T) {
	t.Parallel()
	db := mustOpen(t)
	for _, end := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"Cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
		{"Deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}, context.DeadlineExceeded},
	} {
		t.Run(end.name, func(t *testing.T) {
			ctx, cancel := end.ctx()
			defer cancel()
			start := time.Now()
			done := make(chan error, 1)
			go func() { done <- db.ReadSlowly(ctx) }()
			select {
			case err := <-done:
				if !errors.Is(err, end.want) {
					t.Fatalf("read returned %v, want %v", err, end.want)
				}
				if took := time.Since(start); took > 100*time.Millisecond+time.Second {
					t.Fatalf("read stopped %v after its context ended, want within a second", took-100*time.Millisecond)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("read still runs 10 s after its context ended")
			}
		})
	}
	ctx := context.Background()
	for range 8 {
		if _, err := db.SearchResources(ctx, &linkbridge.ResourceQuery{Type: "Task", Count: 10}); err != nil {
			t.Fatalf("search after interrupted reads: %v", err)
		}
	}
	ended, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := db.SearchResources(ended, &linkbridge.ResourceQuery{Type: "Task", Count: 10}); !errors.Is(err, context.Canceled) {
		t.Fatalf("search with an ended context returned %v, want context.Canceled", err)
	}
}
