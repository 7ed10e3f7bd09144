package sqlite_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared/sqlsharedtest"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
)

// TestCheckpointUnderLoad drives sustained group-committed intake while
// readers keep read transactions open back to back, the load under which
// PASSIVE checkpoints alone never restart the WAL (checkpoint starvation: a
// reader always holds a snapshot in the WAL). The WAL file must stay bounded
// all the same. The test asserts on the largest size the WAL file reaches,
// sampled throughout, for a fixed amount of work, so it does not depend on
// the machine's speed: a slower machine writes fewer frames between resets.
func TestCheckpointUnderLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "linkbridge.db")
	db := sqlite.NewDB(path)
	db.Logger = sqlsharedtest.NewLogger(t)
	// Checking every 10 ms, a reset follows at most 10 ms of writing
	// however fast the machine; the mechanism is the one of the default.
	db.CheckpointInterval = 10 * time.Millisecond
	if err := db.Open(ctx); err != nil {
		t.Fatalf("Open returned unexpected error: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })

	const (
		writers = 2
		intakes = 300
		readers = 4
		// In small batches (two writers) these intakes write about 48 MiB
		// of WAL. With PASSIVE checkpoints every 10 ms and these readers,
		// the WAL reached 40 MiB (the restart-on-begin of before); with
		// the writer's resets it stays at about 5 MiB.
		limit = 20 << 20
	)
	var (
		next    atomic.Int64 // next intake number
		written atomic.Int64 // intakes stored
		reads   atomic.Int64
		maxWAL  atomic.Int64
		wg      sync.WaitGroup
		done    = make(chan struct{})
	)
	sample := func() {
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				t.Error(err)
			}
			return
		}
		for s := maxWAL.Load(); fi.Size() > s && !maxWAL.CompareAndSwap(s, fi.Size()); s = maxWAL.Load() {
		}
	}
	var sampler sync.WaitGroup
	sampler.Go(func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				sample()
			case <-done:
				return
			}
		}
	})
	for range readers {
		wg.Go(func() {
			for n := int64(0); ; n++ {
				select {
				case <-done:
					return
				default:
				}
				w := written.Load()
				if w == 0 {
					time.Sleep(time.Millisecond)
					continue
				}
				// Recent referrals, as a single read and as GetCaseRecord's
				// read transaction, and the service's referral list, whose
				// count and page share a longer read transaction: together the
				// readers nearly always hold a snapshot. An intake number
				// below written may still be in flight: not found is fine,
				// any other error is not.
				id := "sr-" + strconv.FormatInt(w-1-n%min(w, 64), 10)
				var err error
				switch n % 3 {
				case 0:
					_, err = db.FindReferral(ctx, id)
				case 1:
					_, err = db.GetCaseRecord(ctx, id)
				default:
					_, _, err = db.ListReferrals(ctx, linkbridge.ReferralFilter{ServiceODS: "RAT01", Limit: 10})
				}
				if err != nil && linkbridge.ErrorCode(err) != linkbridge.ENOTFOUND {
					t.Errorf("reading %s returned unexpected error: %v", id, err)
					return
				}
				reads.Add(1)
			}
		})
	}
	var ww sync.WaitGroup
	for range writers {
		ww.Go(func() {
			for i := next.Add(1) - 1; i < intakes; i = next.Add(1) - 1 {
				if err := db.CreateReferral(ctx, intake(i, "msg-"+strconv.FormatInt(i, 10))); err != nil {
					t.Errorf("CreateReferral(%d) returned unexpected error: %v", i, err)
					return
				}
				written.Add(1)
			}
		})
	}
	ww.Wait()
	close(done)
	wg.Wait()
	sampler.Wait()
	sample()

	if got := written.Load(); got != intakes {
		t.Fatalf("stored %d intakes, want %d", got, intakes)
	}
	if reads.Load() == 0 {
		t.Fatal("no reads ran alongside the writes")
	}
	t.Logf("%d intakes, %d reads, largest WAL %d bytes", intakes, reads.Load(), maxWAL.Load())
	if got := maxWAL.Load(); got > limit {
		t.Errorf("WAL grew to %d bytes under load, want at most %d", got, limit)
	}
	// Every intake is stored.
	if _, err := db.FindReferral(ctx, "sr-"+strconv.Itoa(intakes-1)); err != nil {
		t.Fatalf("FindReferral after the load returned unexpected error: %v", err)
	}
}
