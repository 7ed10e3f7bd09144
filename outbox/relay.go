// Package outbox is the relay that delivers the durable outbox to the
// GP-side FHIR endpoint: it claims due messages (at most one per person at a
// time, so delivery is ordered per person across any number of workers),
// sends them, and completes, reschedules or dead-letters each. A rescuer
// returns messages left in flight by a crash, and a cleaner deletes
// finished messages once they are older than the retention period. Retries back off with jitter;
// a Retry-After longer than the sender's in-process cap is scheduled in the
// outbox, never slept on.
package outbox

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/linkbridge/linkbridge"
)

// Sender delivers one outbox message. It returns nil on delivery, a
// *RetryableError or *PermanentError (or anything else, treated as
// retryable) on failure.
type Sender interface {
	Send(ctx context.Context, m *linkbridge.OutboxMessage) (status int, err error)
}

// RetryableError asks for another attempt, not before After (zero: the
// relay's backoff decides).
type RetryableError struct {
	Status int
	After  time.Duration
	Err    error
}

func (e *RetryableError) Error() string { return "outbox: retryable: " + e.Err.Error() }
func (e *RetryableError) Unwrap() error { return e.Err }

// PermanentError dead-letters the message, keeping the endpoint's answer.
type PermanentError struct {
	Status  int
	Outcome []byte
	Err     error
}

func (e *PermanentError) Error() string { return "outbox: permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Metrics receives delivery events (see package metrics wiring in cmd).
type Metrics interface {
	Delivered(resourceType string, latency time.Duration)
	Retried(resourceType string)
	DeadLettered(resourceType string)
	// Cleaned records finished messages the cleaner deleted (called once
	// a run, n may be 0).
	Cleaned(n int)
}

// Relay delivers the outbox. Configure the fields, then Start; Stop ends it.
type Relay struct {
	Store  linkbridge.OutboxStore
	Sender Sender
	Logger *slog.Logger
	// Worker names this relay in claimed rows (e.g. host:pid).
	Worker string
	// Batch is how many messages one claim takes (default 64); they are
	// sent concurrently, at most Concurrency at once (default 16).
	Batch, Concurrency int
	// PollInterval is the idle wait between claims (default 250ms); Notify
	// wakes the relay at once.
	PollInterval time.Duration
	// RescueAfter returns messages inflight longer than this (default 2m).
	RescueAfter time.Duration
	// MaxAttempts dead-letters a message after this many retryable failures
	// (0: never; the default is 0 because a GP endpoint down for hours must
	// not lose writes).
	MaxAttempts int
	// Backoff gives the wait before attempt n+1 (default: exponential from
	// 1s, capped at 10m, with full jitter).
	Backoff func(attempt int) time.Duration
	// Retention is how long a finished message (delivered, superseded or
	// discarded) is kept before the cleaner deletes it (0: kept forever).
	// Pending, inflight and dead messages are never deleted.
	Retention time.Duration
	// CleanInterval is how often the cleaner runs (default 10m, or
	// Retention when that is shorter); it runs at Start too.
	CleanInterval time.Duration
	// CleanBatch is how many messages one delete takes (default 1000): a
	// run deletes batch after batch until none is left, each a short
	// write.
	CleanBatch int
	Metrics    Metrics
	// Now returns the current time (default time.Now).
	Now func() time.Time

	wake     chan struct{}
	stop     context.CancelFunc
	done     chan struct{}
	startMu  sync.Mutex
	stopOnce sync.Once
}

// DefaultBackoff is exponential backoff from 1s doubling to a 10 minute cap,
// with full jitter.
func DefaultBackoff(attempt int) time.Duration {
	d := time.Second << min(attempt, 20)
	if d > 10*time.Minute || d <= 0 {
		d = 10 * time.Minute
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func (r *Relay) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Notify wakes the relay to claim at once (after a change was committed).
func (r *Relay) Notify() {
	r.startMu.Lock()
	w := r.wake
	r.startMu.Unlock()
	if w == nil {
		return
	}
	select {
	case w <- struct{}{}:
	default:
	}
}

// Start runs the relay and its rescuer until ctx ends or Stop is called.
func (r *Relay) Start(ctx context.Context) error {
	r.startMu.Lock()
	defer r.startMu.Unlock()
	if r.done != nil {
		return errors.New("outbox: relay already started")
	}
	if r.Batch <= 0 {
		r.Batch = 64
	}
	if r.Concurrency <= 0 {
		r.Concurrency = 16
	}
	if r.PollInterval <= 0 {
		r.PollInterval = 250 * time.Millisecond
	}
	if r.RescueAfter <= 0 {
		r.RescueAfter = 2 * time.Minute
	}
	if r.Backoff == nil {
		r.Backoff = DefaultBackoff
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
	if r.CleanInterval <= 0 {
		r.CleanInterval = 10 * time.Minute
		if r.Retention > 0 && r.Retention < r.CleanInterval {
			r.CleanInterval = r.Retention
		}
	}
	if r.CleanBatch <= 0 {
		r.CleanBatch = 1000
	}
	ctx, cancel := context.WithCancel(ctx)
	r.stop = cancel
	r.wake = make(chan struct{}, 1)
	r.done = make(chan struct{})
	// Rows left inflight by a crashed worker (this one before a restart,
	// or another replica) are rescued once they are older than RescueAfter.
	go r.run(ctx)
	return nil
}

// Stop ends the relay and waits for in-flight sends to finish. It is safe
// to call without Start and more than once.
func (r *Relay) Stop() {
	r.stopOnce.Do(func() {
		r.startMu.Lock()
		stop, done := r.stop, r.done
		r.startMu.Unlock()
		if stop == nil {
			return
		}
		stop()
		<-done
	})
}

func (r *Relay) run(ctx context.Context) {
	defer close(r.done)
	if r.Retention > 0 {
		// The cleaner runs beside the claims, so that a long clean-up never
		// holds up delivery; the relay is done once it has returned too.
		var wg sync.WaitGroup
		wg.Go(func() { r.cleanLoop(ctx) })
		defer wg.Wait()
	}
	rescue := time.NewTicker(r.RescueAfter / 4)
	defer rescue.Stop()
	r.rescue(ctx)
	for {
		n := r.claimAndSend(ctx)
		if ctx.Err() != nil {
			return
		}
		if n > 0 {
			// Delivering a person's message makes their next one claimable:
			// claim again at once, and wait only when nothing was due.
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-rescue.C:
			r.rescue(ctx)
		case <-time.After(r.PollInterval):
		}
	}
}

func (r *Relay) rescue(ctx context.Context) {
	n, err := r.Store.RescueOutbox(ctx, r.now().Add(-r.RescueAfter))
	if err != nil {
		if ctx.Err() == nil {
			r.Logger.WarnContext(ctx, "outbox rescue failed", slog.Any("error", err))
		}
		return
	}
	if n > 0 {
		r.Logger.InfoContext(ctx, "outbox rescued stuck messages", slog.Int("count", n))
	}
}

// cleanLoop runs the cleaner at once and then every CleanInterval until ctx
// ends.
func (r *Relay) cleanLoop(ctx context.Context) {
	tick := time.NewTicker(r.CleanInterval)
	defer tick.Stop()
	for {
		r.clean(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// clean deletes the messages finished before now - Retention, batch after
// batch until a batch deletes none (one batch may free a delivered message
// that an older discarded one held back), and logs the count. Several
// replicas may clean at once: the store gives each batch its own rows.
func (r *Relay) clean(ctx context.Context) {
	before := r.now().Add(-r.Retention)
	total, batches := 0, 0
	for ctx.Err() == nil {
		n, err := r.Store.DeleteFinishedOutbox(ctx, before, r.CleanBatch)
		if err != nil {
			if ctx.Err() == nil {
				r.Logger.WarnContext(ctx, "outbox clean-up failed", slog.Int("deleted", total), slog.Any("error", err))
			}
			break
		}
		batches++
		total += n
		if n == 0 {
			break
		}
	}
	if r.Metrics != nil {
		r.Metrics.Cleaned(total)
	}
	if total > 0 {
		r.Logger.InfoContext(ctx, "outbox deleted finished messages", slog.Int("count", total), slog.Int("batches", batches),
			slog.Duration("retention", r.Retention))
	}
}

// claimAndSend claims one batch and delivers it; it returns the batch size.
func (r *Relay) claimAndSend(ctx context.Context) int {
	msgs, err := r.Store.ClaimOutbox(ctx, r.Worker, r.Batch, r.now())
	if err != nil {
		if ctx.Err() == nil {
			r.Logger.WarnContext(ctx, "outbox claim failed", slog.Any("error", err))
		}
		return 0
	}
	sem := make(chan struct{}, r.Concurrency)
	var wg sync.WaitGroup
	for _, m := range msgs {
		sem <- struct{}{}
		wg.Add(1)
		go func(m *linkbridge.OutboxMessage) {
			defer func() { <-sem; wg.Done() }()
			r.deliver(ctx, m)
		}(m)
	}
	wg.Wait()
	return len(msgs)
}

// deliver sends one message and records the outcome. A relay stopping
// mid-send leaves the message inflight for the rescuer: the endpoint may or
// may not have applied it, and a second idempotent PUT is harmless.
func (r *Relay) deliver(ctx context.Context, m *linkbridge.OutboxMessage) {
	// A send must end well before the rescuer could hand the message to
	// another worker, or an old version could land after a newer one. (Should
	// it be rescued all the same, the store refuses this relay's answer: see
	// recordFailed.)
	sctx, scancel := context.WithTimeout(ctx, r.RescueAfter/2)
	status, err := r.Sender.Send(sctx, m)
	scancel()
	if ctx.Err() != nil {
		return
	}
	// Recording uses a fresh context: the result of a send must not be lost
	// to a cancellation that arrived just after it.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	log := r.Logger.With(slog.Int64("outbox_id", m.ID), slog.String("resource_type", m.ResourceType),
		slog.String("resource_id", m.ResourceID), slog.Int("version", m.Version), slog.Int("attempt", m.Attempts+1))
	var perm *PermanentError
	var retry *RetryableError
	claim := m.Claim()
	switch {
	case err == nil:
		if err := r.Store.CompleteOutbox(rctx, claim, status, r.now()); err != nil {
			r.recordFailed(ctx, log, "complete", err)
			return
		}
		if r.Metrics != nil {
			r.Metrics.Delivered(m.ResourceType, r.now().Sub(m.CreatedAt))
		}
		log.DebugContext(ctx, "write-back delivered", slog.Int("status", status))
	case errors.As(err, &perm):
		if err := r.Store.DeadLetterOutbox(rctx, claim, perm.Status, perm.Err.Error(), perm.Outcome); err != nil {
			r.recordFailed(ctx, log, "dead-letter", err)
			return
		}
		if r.Metrics != nil {
			r.Metrics.DeadLettered(m.ResourceType)
		}
		log.WarnContext(ctx, "write-back rejected: dead-lettered", slog.Int("status", perm.Status))
	default:
		st := 0
		after := time.Duration(0)
		if errors.As(err, &retry) {
			st, after = retry.Status, retry.After
		}
		if r.MaxAttempts > 0 && m.Attempts+1 >= r.MaxAttempts {
			if err := r.Store.DeadLetterOutbox(rctx, claim, st, "too many attempts: "+err.Error(), nil); err != nil {
				r.recordFailed(ctx, log, "dead-letter", err)
				return
			}
			if r.Metrics != nil {
				r.Metrics.DeadLettered(m.ResourceType)
			}
			return
		}
		wait := r.Backoff(m.Attempts)
		if after > wait {
			wait = after
		}
		if err := r.Store.RetryOutboxLater(rctx, claim, r.now().Add(wait), st, err.Error()); err != nil {
			r.recordFailed(ctx, log, "reschedule", err)
			return
		}
		if r.Metrics != nil {
			r.Metrics.Retried(m.ResourceType)
		}
		log.InfoContext(ctx, "write-back failed: will retry", slog.Int("status", st), slog.Duration("wait", wait))
	}
}

// recordFailed logs a state change (op) that the store refused or could not
// make. ECONFLICT means the claim was lost: the message was rescued while
// this relay was sending it (and may be claimed again, by any worker), or an
// operator changed it; its current holder decides what becomes of it, so
// this relay's answer is dropped. Anything else leaves the message inflight
// for the rescuer.
func (r *Relay) recordFailed(ctx context.Context, log *slog.Logger, op string, err error) {
	if linkbridge.ErrorCode(err) == linkbridge.ECONFLICT {
		log.WarnContext(ctx, "outbox claim lost: answer dropped", slog.String("op", op), slog.String("worker", r.Worker))
		return
	}
	log.WarnContext(ctx, "outbox "+op+" failed", slog.Any("error", err))
}
