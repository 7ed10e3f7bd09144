// Package outbox is the relay that delivers the durable outbox to the
// GP-side FHIR endpoint: it claims due messages (at most one per person at a
// time, so delivery is ordered per person across any number of workers),
// sends them, and completes, reschedules or dead-letters each. Sends run in
// a sliding window: the relay claims more as soon as a send finishes, and
// each send has its own timeout, so one slow person never holds up the
// others. A rescuer returns messages left in flight by a crash, and a
// cleaner deletes finished messages once they are older than the retention
// period; both run on their own schedule, however busy the relay is.
// Retries back off with jitter; a Retry-After longer than the sender's
// in-process cap is scheduled in the outbox, never slept on.
package outbox

import (
	"context"
	"errors"
	"fmt"
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
	// Fixed makes After the wait itself, not a floor under the relay's
	// backoff: a message waiting for another to be delivered first (a
	// dependency) is tried again after After however many attempts it has
	// made.
	Fixed bool
	Err   error
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
	// Channel is the channel the relay delivers (default
	// linkbridge.ChannelWriteBack): it claims and rescues only that
	// channel's messages, so each channel's relay has its own window,
	// timeouts and backoff.
	Channel linkbridge.OutboxChannel
	Logger  *slog.Logger
	// Worker names this relay in claimed rows (e.g. host:pid).
	Worker string
	// Concurrency is the window: at most this many messages are claimed
	// and being sent at once (default 16). Each send that finishes frees
	// its slot, and the relay claims again at once, so a slow send holds
	// one slot, never the others. Batch caps how many messages one claim
	// takes (default 64; a claim takes at most the free slots).
	Batch, Concurrency int
	// PollInterval is the idle wait between claims (default 250ms); Notify
	// wakes the relay at once.
	PollInterval time.Duration
	// RescueAfter returns messages inflight longer than this (default 2m).
	// The rescuer runs at Start and then every RescueAfter/4, on its own
	// goroutine, however busy the relay is.
	RescueAfter time.Duration
	// SendTimeout bounds one message's send, in-process retries included
	// (default 30s), so that an endpoint that hangs on one person costs
	// that person's slot for this long, not everyone's delivery. A send
	// is cut off at RescueAfter/2 if that is shorter: it must end well
	// before the rescuer could hand the message to another worker. A send
	// that times out is retryable: rescheduled with backoff, counting an
	// attempt.
	SendTimeout time.Duration
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

	sendTimeout time.Duration // SendTimeout capped at RescueAfter/2
	wake        chan struct{}
	stop        context.CancelFunc
	done        chan struct{}
	startMu     sync.Mutex
	stopOnce    sync.Once
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

// Start runs the relay, its rescuer and (with a Retention) its cleaner
// until ctx ends or Stop is called.
func (r *Relay) Start(ctx context.Context) error {
	r.startMu.Lock()
	defer r.startMu.Unlock()
	if r.done != nil {
		return errors.New("outbox: relay already started")
	}
	if r.Channel == "" {
		r.Channel = linkbridge.ChannelWriteBack
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
	if r.SendTimeout <= 0 {
		r.SendTimeout = 30 * time.Second
	}
	r.sendTimeout = min(r.SendTimeout, r.RescueAfter/2)
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
	// The rescuer and the cleaner run beside the claims, each on its own
	// schedule: a busy relay never starves the rescuer (messages a crashed
	// worker left in flight would hold their persons' queues), and a long
	// clean-up never holds up delivery. The relay is done once they have
	// returned too.
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { r.rescueLoop(ctx) })
	if r.Retention > 0 {
		wg.Go(func() { r.cleanLoop(ctx) })
	}
	r.deliverLoop(ctx)
}

// deliverLoop keeps up to Concurrency sends going until ctx ends, then
// waits for them. It claims as many messages as there are free slots (at
// most Batch), starts a send for each, and claims again as soon as a send
// finishes (delivering a person's message makes their next one claimable);
// it waits for Notify, the rescuer or PollInterval only after a claim came
// back empty.
func (r *Relay) deliverLoop(ctx context.Context) {
	finished := make(chan struct{}, r.Concurrency) // one token per ended send; never blocks
	var sends sync.WaitGroup
	defer sends.Wait()
	inflight := 0
	idle := false // the last claim found nothing due
	for {
		for !idle && inflight < r.Concurrency {
			msgs := r.claim(ctx, min(r.Concurrency-inflight, r.Batch))
			if ctx.Err() != nil {
				return
			}
			for _, m := range msgs {
				inflight++
				sends.Go(func() {
					defer func() { finished <- struct{}{} }()
					r.deliver(ctx, m)
				})
			}
			idle = len(msgs) == 0
		}
		var poll <-chan time.Time
		if idle {
			poll = time.After(r.PollInterval)
		}
		select {
		case <-ctx.Done():
			return
		case <-finished:
			inflight--
			// Take every slot freed meanwhile, for one larger claim.
			for drained := false; !drained; {
				select {
				case <-finished:
					inflight--
				default:
					drained = true
				}
			}
		case <-r.wake:
		case <-poll:
		}
		idle = false
	}
}

// claim claims up to limit messages for this relay (none on error).
func (r *Relay) claim(ctx context.Context, limit int) []*linkbridge.OutboxMessage {
	msgs, err := r.Store.ClaimOutbox(ctx, r.Channel, r.Worker, limit, r.now())
	if err != nil {
		if ctx.Err() == nil {
			r.Logger.WarnContext(ctx, "outbox claim failed", slog.Any("error", err))
		}
		return nil
	}
	return msgs
}

// rescueLoop runs the rescuer at once and then every RescueAfter/4 until
// ctx ends; rescued messages wake the claims.
func (r *Relay) rescueLoop(ctx context.Context) {
	tick := time.NewTicker(r.RescueAfter / 4)
	defer tick.Stop()
	for {
		if r.rescue(ctx) > 0 {
			select {
			case r.wake <- struct{}{}:
			default:
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// rescue returns messages inflight since before now - RescueAfter to
// pending and reports how many.
func (r *Relay) rescue(ctx context.Context) int {
	n, err := r.Store.RescueOutbox(ctx, r.Channel, r.now().Add(-r.RescueAfter))
	if err != nil {
		if ctx.Err() == nil {
			r.Logger.WarnContext(ctx, "outbox rescue failed", slog.Any("error", err))
		}
		return 0
	}
	if n > 0 {
		r.Logger.InfoContext(ctx, "outbox rescued stuck messages", slog.Int("count", n))
	}
	return n
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

// deliver sends one message and records the outcome. A relay stopping
// mid-send leaves the message inflight for the rescuer: the endpoint may or
// may not have applied it, and a second idempotent PUT is harmless.
func (r *Relay) deliver(ctx context.Context, m *linkbridge.OutboxMessage) {
	// A send is cut off after SendTimeout, so that an endpoint hanging on
	// one person holds one slot for that long, and always well before the
	// rescuer could hand the message to another worker, or an old version
	// could land after a newer one. (Should it be rescued all the same, the
	// store refuses this relay's answer: see recordFailed.)
	sctx, scancel := context.WithTimeout(ctx, r.sendTimeout)
	status, err := r.Sender.Send(sctx, m)
	timedOut := err != nil && errors.Is(sctx.Err(), context.DeadlineExceeded)
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
	if timedOut && !errors.As(err, &perm) {
		// The endpoint may or may not have applied it: try again later (a
		// second idempotent PUT is harmless).
		err = &RetryableError{Err: fmt.Errorf("send timed out after %s: %w", r.sendTimeout, err)}
	}
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
		fixed := false
		if errors.As(err, &retry) {
			st, after, fixed = retry.Status, retry.After, retry.Fixed
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
		if after > wait || fixed && after > 0 {
			wait = after
		}
		if err := r.Store.RetryOutboxLater(rctx, claim, r.now().Add(wait), st, err.Error()); err != nil {
			r.recordFailed(ctx, log, "reschedule", err)
			return
		}
		if r.Metrics != nil {
			r.Metrics.Retried(m.ResourceType)
		}
		if timedOut {
			log.WarnContext(ctx, "write-back send timed out: will retry", slog.Duration("timeout", r.sendTimeout), slog.Duration("wait", wait))
			return
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
