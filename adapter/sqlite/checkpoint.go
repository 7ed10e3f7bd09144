package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"sync/atomic"
	"time"
)

// Checkpoints. SQLite's automatic checkpoint runs inside the COMMIT that
// takes the WAL past 1000 pages: the writer copies the pages to the database
// file and fsyncs it while every request of the batch waits. The write
// connection turns it off (wal_autocheckpoint=0); instead a checkpointer
// goroutine on a connection of its own runs PASSIVE checkpoints, alongside
// the writer, doing most of the copying and the database fsync off the write
// path.
//
// Copying frames is not enough to bound the WAL: SQLite only writes from the
// WAL's beginning again once it is restarted, and a PASSIVE checkpoint never
// restarts it. The write transaction that begins after a complete checkpoint
// restarts it only if no reader is still reading WAL frames at that instant,
// and it does not wait; under sustained intake some reader always is
// (checkpoint starvation), so the WAL grew by every write, to 120 MB in ten
// seconds of `linkbridge bench`. And a WAL file that was once large stayed
// that large.
//
// So when a checkpoint leaves at least walResetFrames frames in the WAL, the
// checkpointer asks the writer to reset it: after its next commit, the writer
// runs a RESTART checkpoint, which copies what was written since the
// background checkpoint began, waits for the readers still on WAL frames to
// finish (read transactions last milliseconds; new readers read the database
// file and do not hold it up) and restarts the WAL. The wait is bounded by
// walResetTimeout, the write path's longest stall for it; a reset that runs
// out of time is asked for again at the next check. Measured under `bench`
// (about 10,000 frames written a second), a reset takes 1 to 30 ms.
//
// A reset follows at most about one CheckpointInterval of writing, so the
// interval is short: 100 ms, 1000 to 4000 frames (4 to 16 MiB) under
// `bench`. (With 1 s the WAL reached 25,000 frames between resets.) A
// checkpoint that finds nothing new to copy does no I/O, so the short
// interval costs nothing when idle. The write connection's
// journal_size_limit (walSizeLimit) truncates the WAL file at a reset that
// follows a burst, so the file does not keep the size of the largest burst
// either.

// DefaultCheckpointInterval is the default time between background
// checkpoints.
const DefaultCheckpointInterval = 100 * time.Millisecond

// walResetFrames is the WAL size, in frames, above which the checkpointer
// asks the writer to reset the WAL: 4 MiB of 4 KiB pages, the size at which
// SQLite's automatic checkpoint would run.
const walResetFrames = 1000

// walResetTimeout bounds how long the writer's RESTART checkpoint waits for
// readers.
const walResetTimeout = 50 * time.Millisecond

// walSizeLimit is the write connection's journal_size_limit: after a reset,
// the WAL file is truncated to this size when larger.
const walSizeLimit = 16 << 20

// busyTimeout is the write connection's busy_timeout, which the writer sets
// again after a reset.
const busyTimeout = 5 * time.Second

// checkpointer runs background checkpoints; see above.
type checkpointer struct {
	db      *sql.DB
	conn    *sql.Conn
	log     *slog.Logger
	every   time.Duration
	wantCkp *atomic.Bool // set: the writer should checkpoint after its commit

	quit    chan struct{}
	stopped chan struct{}
}

// startCheckpointer opens the checkpointer's connection and starts it.
func startCheckpointer(ctx context.Context, path string, every time.Duration, syncPragma string, want *atomic.Bool, log *slog.Logger) (*checkpointer, error) {
	// synchronous=FULL (syncPragma, but for a bulk load): the checkpoint fsyncs
	// the database file before the WAL may be restarted over the frames it
	// copied.
	db, err := sql.Open("sqlite", dsn(path, url.Values{
		"_pragma": {"busy_timeout(5000)", syncPragma, cachePragma(checkpointCacheKiB), mmapPragma},
	}))
	if err != nil {
		return nil, fmt.Errorf("sqlite: start checkpointer: %w", err)
	}
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sqlite: start checkpointer: %w", err)
	}
	c := &checkpointer{
		db: db, conn: conn, log: log, every: every, wantCkp: want,
		quit: make(chan struct{}), stopped: make(chan struct{}),
	}
	go c.run()
	return c, nil
}

// run checkpoints every interval until stopped.
func (c *checkpointer) run() {
	defer close(c.stopped)
	t := time.NewTicker(c.every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-c.quit:
			return
		}
		res, err := checkpoint(c.conn, "PASSIVE")
		if err != nil {
			c.log.Warn("background checkpoint", slog.Any("error", err))
			continue
		}
		if res.log >= walResetFrames {
			c.wantCkp.Store(true)
		}
	}
}

// stop stops the checkpointer and closes its connection. A checkpoint in
// progress finishes first.
func (c *checkpointer) stop() error {
	close(c.quit)
	<-c.stopped
	err := c.conn.Close()
	if cerr := c.db.Close(); err == nil {
		err = cerr
	}
	return err
}

// checkpointResult is the row of PRAGMA wal_checkpoint.
type checkpointResult struct {
	// busy is set when the checkpoint could not run to completion.
	busy bool
	// log is the number of frames in the WAL, checkpointed the number of
	// them copied to the database file (-1 when not in WAL mode).
	log, checkpointed int
}

// checkpoint runs PRAGMA wal_checkpoint(mode) on conn.
func checkpoint(conn *sql.Conn, mode string) (checkpointResult, error) {
	var r checkpointResult
	var busy int
	if err := conn.QueryRowContext(context.Background(), `PRAGMA wal_checkpoint(`+mode+`)`).
		Scan(&busy, &r.log, &r.checkpointed); err != nil {
		return r, fmt.Errorf("sqlite: checkpoint %s: %w", mode, err)
	}
	r.busy = busy != 0
	return r, nil
}
