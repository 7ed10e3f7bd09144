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
// goroutine on a connection of its own runs PASSIVE checkpoints every
// CheckpointInterval, alongside the writer, doing the copying and the
// database fsync off the write path.
//
// A checkpoint that runs alongside the writer rarely catches up with it, and
// the WAL only starts again from its beginning when a write transaction
// begins with every frame checkpointed. So when a checkpoint leaves at least
// walResetFrames frames in the WAL, the checkpointer asks the writer to run a
// PASSIVE checkpoint itself after its next commit: the writer copies only
// what was written since, and its next transaction restarts the WAL. That
// bounds the WAL to about one interval of writes under sustained load.

// DefaultCheckpointInterval is the default time between background
// checkpoints.
const DefaultCheckpointInterval = time.Second

// walResetFrames is the WAL size, in frames, above which the checkpointer
// asks the writer to checkpoint and so restart the WAL: 4 MiB of 4 KiB
// pages, the size at which SQLite's automatic checkpoint would run.
const walResetFrames = 1000

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
func startCheckpointer(ctx context.Context, path string, every time.Duration, want *atomic.Bool, log *slog.Logger) (*checkpointer, error) {
	// synchronous=FULL: the checkpoint fsyncs the database file before the
	// WAL may be restarted over the frames it copied.
	db, err := sql.Open("sqlite", dsn(path, url.Values{
		"_pragma": {"busy_timeout(5000)", "synchronous(FULL)"},
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
