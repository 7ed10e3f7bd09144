package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/fhirmap"
)

// Bounds on a seed run. A seed holds at most maxSeedReferrals: the 909,091
// NHS numbers of the 999 test range that pass Modulus 11, one person per
// referral but for the one in eight that re-refers a person.
const (
	maxSeedReferrals = 909_091 * seedReReferralShare / (seedReReferralShare - 1)
	maxSeedBatch     = 10_000
	maxSeedWriters   = 16
	maxSeedPractices = 9999 // Practice renders Y90001 to Y99999
	maxSeedServices  = 999  // Service renders SPS001 to SPS999
)

// The organisation model of a seed (docs/performance.md, "Seeding"): a GP
// practice refers about seedPracticeYearly people a year to social
// prescribing, and a service (a primary care network's link workers, about
// six practices) receives about seedServiceYearly; a link worker holds
// about seedCaseloadYearly people a year (NHS England's 200–250).
const (
	seedPracticeYearly = 250
	seedServiceYearly  = 1500
	seedCaseloadYearly = 225
	// The smallest defaults, those of a small seed: 40 practices, 4
	// services.
	minSeedPractices = 40
	minSeedServices  = 4
)

// DefaultPractices is the number of referring practices a seed of
// referrals over span has by default: enough that a practice refers about
// 250 people a year, and at least 40.
func DefaultPractices(referrals int, span time.Duration) int {
	return clamp(perYear(referrals, span)/seedPracticeYearly, minSeedPractices, maxSeedPractices)
}

// DefaultServices is the number of social prescribing services a seed of
// referrals over span has by default: enough that a service receives
// about 1,500 referrals a year (six practices' worth), and at least 4.
func DefaultServices(referrals int, span time.Duration) int {
	return clamp(perYear(referrals, span)/seedServiceYearly, minSeedServices, maxSeedServices)
}

// perYear is the yearly rate of referrals received evenly over span.
func perYear(referrals int, span time.Duration) float64 {
	years := max(span.Hours()/(365*24), 1.0/365)
	return float64(referrals) / years
}

// clamp rounds x and bounds it to [lo, hi].
func clamp(x float64, lo, hi int) int {
	return min(max(int(math.Round(x)), lo), hi)
}

// SeedConfig configures Seed. The zero value of every field but Referrals
// takes the default its comment names.
type SeedConfig struct {
	// Referrals is how many referrals to store (at least 1).
	Referrals int
	// Seed makes the journeys: the same seed and Referrals give the same
	// store, ids, NHS numbers and times included (default 1).
	Seed uint64
	// Batch is the number of referrals each WriteBatch stores, with every
	// change of their journeys, in one transaction (default 250).
	Batch int
	// Workers build journeys in parallel (default GOMAXPROCS); Writers
	// call WriteBatch concurrently (default 1: SQLite has one writer, and
	// its writer groups concurrent batches anyway; PostgreSQL gains from 2
	// to 4).
	Workers, Writers int
	// End is the seeded store's "now": journeys received before it are
	// cut there, so the last months' referrals are still open (default
	// 2026-11-30 12:00 UTC, fixed so that a seed is repeatable).
	End time.Time
	// Span is the period before End over which the referrals were
	// received, evenly (default three years).
	Span time.Duration
	// Practices and Services are the numbers of referring GP practices
	// and of social prescribing services. By default they grow with
	// Referrals so that each organisation's yearly volume stays that of a
	// real one (see DefaultPractices and DefaultServices); a service takes
	// the referrals of its practices, so Services is at most Practices.
	Practices, Services int
	// OutboxWindow is how far back from End changes still have their
	// write-backs in the outbox, pending, as the write path queues them
	// (default 7 days; negative: none). Older ones are taken as delivered
	// and deleted after --outbox-retention (README, "Write-back to the GP
	// record"), so they are not stored.
	OutboxWindow time.Duration
	// Progress, if set, receives a progress bar with the rate and ETA,
	// redrawn in place on a terminal, one line every ProgressEvery
	// otherwise (default 5 s).
	Progress      io.Writer
	ProgressEvery time.Duration
}

// DefaultSeedEnd is SeedConfig.End's default.
var DefaultSeedEnd = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// Validate checks the configuration and fills in the defaults.
func (c *SeedConfig) Validate() error {
	switch {
	case c.Referrals < 1 || c.Referrals > maxSeedReferrals:
		return fmt.Errorf("--referrals must be between 1 and %d (the NHS numbers of the 999 test range)", maxSeedReferrals)
	case c.Batch < 0 || c.Batch > maxSeedBatch:
		return fmt.Errorf("--batch must be between 1 and %d", maxSeedBatch)
	case c.Writers < 0 || c.Writers > maxSeedWriters:
		return fmt.Errorf("--writers must be between 1 and %d", maxSeedWriters)
	case c.Workers < 0 || c.Workers > 4*runtime.GOMAXPROCS(0)+4:
		return fmt.Errorf("--workers must be between 1 and %d", 4*runtime.GOMAXPROCS(0)+4)
	case c.Practices < 0 || c.Practices > maxSeedPractices, c.Services < 0 || c.Services > maxSeedServices:
		return fmt.Errorf("--practices must be between 1 and %d, --services between 1 and %d", maxSeedPractices, maxSeedServices)
	case c.Practices > 0 && c.Services > c.Practices:
		return errors.New("--services must not exceed --practices: a service takes the referrals of its practices")
	case c.Span < 0:
		return errors.New("the span must be positive")
	}
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&c.Batch, 250)
	def(&c.Workers, runtime.GOMAXPROCS(0))
	def(&c.Writers, 1)
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.End.IsZero() {
		c.End = DefaultSeedEnd
	}
	c.End = c.End.UTC()
	if c.Span == 0 {
		c.Span = 3 * 365 * 24 * time.Hour
	}
	def(&c.Practices, DefaultPractices(c.Referrals, c.Span))
	def(&c.Services, min(DefaultServices(c.Referrals, c.Span), c.Practices))
	if c.OutboxWindow == 0 {
		c.OutboxWindow = 7 * 24 * time.Hour
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = 5 * time.Second
	}
	return nil
}

// SeedStats is what Seed stored.
type SeedStats struct {
	// Referrals and People stored (a person re-referred has several
	// referrals).
	Referrals, People int
	// Changes are the referral changes after intake (each a new referral
	// version with its history event and audit record).
	Changes int
	// Resources are the FHIR resource versions written (version 1 and
	// later, the intake's included).
	Resources int
	// Contacts, Measures and Goals of the case records.
	Contacts, Measures, Goals int
	// Outbox is the number of write-backs queued (pending); Audit the
	// audit records.
	Outbox, Audit int
	// Statuses counts the referrals by their Task status at End.
	Statuses map[linkbridge.TaskStatus]int
	// Elapsed is the wall time of the run.
	Elapsed time.Duration
}

// Rate is the referrals stored per second of Elapsed.
func (s *SeedStats) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Referrals) / s.Elapsed.Seconds()
}

// add adds o's counts to s.
func (s *SeedStats) add(o *SeedStats) {
	s.Referrals += o.Referrals
	s.People += o.People
	s.Changes += o.Changes
	s.Resources += o.Resources
	s.Contacts += o.Contacts
	s.Measures += o.Measures
	s.Goals += o.Goals
	s.Outbox += o.Outbox
	s.Audit += o.Audit
	if s.Statuses == nil {
		s.Statuses = map[linkbridge.TaskStatus]int{}
	}
	for k, v := range o.Statuses {
		s.Statuses[k] += v
	}
}

// Seed fills store with cfg.Referrals referrals and their journeys (see
// Journeys for what one holds), cfg.Batch referrals to a transaction,
// through the store's own write path: each batch is the intakes and
// changes that intake and casework would have made, applied by
// linkbridge.BatchStore.WriteBatch with the statements of CreateReferral
// and UpdateReferral. The store should be empty: a second seed with the
// same Seed collides with the first (EDUPLICATE).
//
// Journeys are built by cfg.Workers goroutines while cfg.Writers write;
// the first error stops the run. The stats count what was stored, also
// when an error stopped it.
func Seed(ctx context.Context, store linkbridge.BatchStore, cfg SeedConfig) (SeedStats, error) {
	if err := cfg.Validate(); err != nil {
		return SeedStats{}, err
	}
	codec, err := fhirjson.New()
	if err != nil {
		return SeedStats{}, err
	}
	g := newJourneys(cfg, codec)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	type batch struct {
		ops   []linkbridge.BatchOp
		stats SeedStats
	}
	starts := make(chan int)
	built := make(chan *batch, cfg.Writers)
	var (
		total    SeedStats
		mu       sync.Mutex
		done     atomic.Int64
		builders sync.WaitGroup
		writers  sync.WaitGroup
	)
	go func() {
		defer close(starts)
		for lo := 0; lo < cfg.Referrals; lo += cfg.Batch {
			select {
			case starts <- lo:
			case <-ctx.Done():
				return
			}
		}
	}()
	// Batches go to the writers in any order: a re-referral's person is
	// stored by a batch far enough ahead of it (see newJourneys).
	for range cfg.Workers {
		builders.Add(1)
		go func() {
			defer builders.Done()
			for lo := range starts {
				b := &batch{}
				for i := lo; i < min(lo+cfg.Batch, cfg.Referrals); i++ {
					ops, err := g.Journey(i, &b.stats)
					if err != nil {
						cancel(fmt.Errorf("referral %d: %w", i, err))
						return
					}
					b.ops = append(b.ops, ops...)
				}
				select {
				case built <- b:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		builders.Wait()
		close(built)
	}()
	// A store that keeps planner statistics (PostgreSQL) is analyzed as
	// it grows, each time it has doubled: autovacuum would do so on a
	// production server (at every 10%), but it may be off, and without it
	// the plans chosen on the first, nearly empty batches (a sequential
	// scan of resource for each change) stay cached for the whole seed
	// (docs/performance.md#seeding-a-store-bench-seed).
	analyzer, _ := store.(interface{ Analyze(context.Context) error })
	var (
		analyzeMu   sync.Mutex
		analyzedAt  int
		analyzeNext = cfg.Batch
	)
	analyzeIfDoubled := func(n int) error {
		if analyzer == nil || !analyzeMu.TryLock() {
			return nil
		}
		defer analyzeMu.Unlock()
		if n < analyzeNext || n == cfg.Referrals {
			return nil
		}
		if err := analyzer.Analyze(ctx); err != nil {
			return err
		}
		analyzedAt = n
		analyzeNext = 2 * analyzedAt
		return nil
	}
	start := time.Now()
	bar := newProgressBar(cfg.Progress, cfg.Referrals, cfg.ProgressEvery, start)
	for range cfg.Writers {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for b := range built {
				if ctx.Err() != nil {
					continue // drain
				}
				if err := store.WriteBatch(ctx, b.ops); err != nil {
					cancel(err)
					continue
				}
				mu.Lock()
				total.add(&b.stats)
				mu.Unlock()
				n := int(done.Add(int64(b.stats.Referrals)))
				bar.set(n)
				if err := analyzeIfDoubled(n); err != nil {
					cancel(err)
				}
			}
		}()
	}
	writers.Wait()
	total.Elapsed = time.Since(start)
	bar.finish(int(done.Load()))
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) || err != nil && total.Referrals < cfg.Referrals {
		return total, err
	}
	// A bulk load ends with fresh planner statistics where the store keeps
	// them itself (PostgreSQL's ANALYZE), so that the store is measured
	// with the plans it would have once autovacuum had run.
	if analyzer != nil {
		if err := analyzer.Analyze(ctx); err != nil {
			return total, err
		}
	}
	// Every seeded resource was indexed with the search parameter table of
	// this build (fhirmap.SearchParams): record it, as intake.Reindex
	// would, so that the gateway does not re-index the store at start-up.
	if is, ok := store.(linkbridge.IndexStore); ok {
		if err := is.SetSearchIndexVersion(ctx, fhirmap.SearchIndexVersion()); err != nil {
			return total, err
		}
	}
	return total, nil
}

// progressBar draws "[=====>    ]  45.2%  452,000/1,000,000  612/s  ETA
// 14m55s" on w: in place on a terminal, one line every `every` otherwise.
type progressBar struct {
	w       io.Writer
	total   int
	every   time.Duration
	start   time.Time
	inPlace bool

	mu   sync.Mutex
	last time.Time
}

// newProgressBar returns a bar that draws on w (nil: draws nothing).
func newProgressBar(w io.Writer, total int, every time.Duration, start time.Time) *progressBar {
	b := &progressBar{w: w, total: total, every: every, start: start, inPlace: isTerminal(w)}
	if b.inPlace {
		b.every = 200 * time.Millisecond
	}
	return b
}

// set records that n referrals are stored, redrawing when it is time.
func (b *progressBar) set(n int) {
	if b.w == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if now.Sub(b.last) < b.every && n < b.total {
		return
	}
	b.last = now
	b.draw(n, now)
}

// finish draws the bar a last time and ends its line.
func (b *progressBar) finish(n int) {
	if b.w == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.inPlace {
		b.draw(n, time.Now())
		_, _ = io.WriteString(b.w, "\n")
	}
}

func (b *progressBar) draw(n int, now time.Time) {
	const width = 30
	frac := float64(n) / float64(b.total)
	fill := int(frac * width)
	bar := strings.Repeat("=", fill)
	if fill < width {
		bar += ">" + strings.Repeat(" ", width-fill-1)
	}
	elapsed := now.Sub(b.start)
	rate := float64(n) / max(elapsed.Seconds(), 1e-9)
	eta := "?"
	if rate > 0 && n < b.total {
		eta = time.Duration(float64(b.total-n) / rate * float64(time.Second)).Round(time.Second).String()
	} else if n >= b.total {
		eta = "0s"
	}
	line := fmt.Sprintf("[%s] %5.1f%%  %s/%s referrals  %.0f/s  elapsed %s  ETA %s",
		bar, 100*frac, thousands(n), thousands(b.total), rate, elapsed.Round(time.Second), eta)
	if b.inPlace {
		_, _ = fmt.Fprintf(b.w, "\r%s\x1b[K", line)
		return
	}
	_, _ = fmt.Fprintln(b.w, line)
}

// thousands renders n with comma separators.
func thousands(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// seedSource is the address seeded audit records name: from a
// documentation range (RFC 5737), never a real one.
const seedSource = "192.0.2.10"

// seedSystems are the URIs of the seeded FHIR view: the default system
// base, as a gateway started without --system-base uses.
var seedSystems fhirmap.Systems
