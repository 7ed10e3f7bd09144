package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"runtime"
	"testing"
)

// TestPragmaMemoryBounds: every connection of the store has a bounded page
// cache and no memory-mapped I/O, so the gateway's memory does not grow
// with the store (docs/performance.md#memory): the writer's cache
// (CacheMiB), each reader's (ReadCacheMiB, every connection of the pool)
// and the checkpointer's, with mmap_size 0 on all of them.
func TestPragmaMemoryBounds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name              string
		write, read       int // DB fields (0: the defaults)
		wantWrite, wantRd int // cache_size, KiB as a negative number
	}{
		{"Defaults", 0, 0, -DefaultWriteCacheMiB * 1024, -DefaultReadCacheMiB * 1024},
		{"Set", 32, 3, -32 * 1024, -3 * 1024},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := NewDB(filepath.Join(t.TempDir(), "lb.db"))
			db.CacheMiB, db.ReadCacheMiB = tc.write, tc.read
			if err := db.Open(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })

			check := func(what string, conn *sql.Conn, wantCache int) {
				t.Helper()
				var cache, mmap int
				if err := conn.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&cache); err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				if err := conn.QueryRowContext(ctx, "PRAGMA mmap_size").Scan(&mmap); err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				if cache != wantCache || mmap != 0 {
					t.Errorf("%s: cache_size %d, mmap_size %d; want %d, 0", what, cache, mmap, wantCache)
				}
			}
			// The writer holds the only write connection; it idles here
			// (sql.Conn serialises the calls in any case).
			check("write connection", db.w.conn, tc.wantWrite)
			// Every reader, held at once so that each is its own.
			n := max(4, runtime.GOMAXPROCS(0))
			var held []*sql.Conn
			for range n {
				rc, err := db.read.Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				held = append(held, rc)
				check("read connection", rc, tc.wantRd)
			}
			for _, rc := range held {
				_ = rc.Close()
			}
			if db.ckpt == nil {
				t.Fatal("no checkpointer")
			}
			check("checkpoint connection", db.ckpt.conn, -checkpointCacheKiB)
		})
	}
}
