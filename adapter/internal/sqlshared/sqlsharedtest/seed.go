package sqlsharedtest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// Corpus describes a seeded store of Referrals referrals, as intake and the
// case-record view leave them: per referral a Patient, a ServiceRequest, a
// Task and two Goals, each at version 1, with the search parameter values
// fhirmap.SearchParams computes for such resources and the referral's two
// access keys (linkbridge.ReferralAccessKeys). The referrals are spread
// over Services services (the first receives most: it is the service whose
// searches were slow) and Practices GP practices (round robin), and their
// Tasks over the workflow statuses.
//
// The adapters' tests write a Corpus straight into the store's tables (the
// real schema, as the migrations make it) in bulk, which is what makes
// 10,000 referrals a matter of seconds: see each adapter's seed test code.
// Resources seeded this way have no referral or person rows; only searches
// and reads run on them.
type Corpus struct {
	// Referrals is the number of referrals.
	Referrals int
	// Services and Practices are the numbers of organisations; at least 1.
	Services, Practices int
	// Start is the lastUpdated of the first referral's resources; referral
	// i is a minute after referral i-1.
	Start time.Time

	// index is every resource without its body, for Expect.
	indexOnce sync.Once
	index     []SeedResource
}

// NewCorpus returns the corpus of n referrals over three services and
// twenty practices.
func NewCorpus(n int) *Corpus {
	return &Corpus{Referrals: n, Services: 3, Practices: 20, Start: time.Date(2025, 1, 6, 8, 0, 0, 0, time.UTC)}
}

// SeedResource is one resource of a corpus with its search parameter
// values and access keys.
type SeedResource struct {
	Type, ID    string
	LastUpdated time.Time
	Body        []byte
	Params      []linkbridge.SearchParam
	// ParamsColumn is Params as the resource.params column stores them
	// (sqlshared.EncodeParams).
	ParamsColumn string
	// Keys are the access keys the resource carries.
	Keys []string
}

// Service returns the ODS code of the service referral i is addressed to:
// the first service gets 60% of the referrals, the others share the rest.
func (c *Corpus) Service(i int) string {
	n := 0
	if c.Services > 1 && i%10 >= 6 {
		n = 1 + i%(c.Services-1)
	}
	return fmt.Sprintf("SVC%02d", n+1)
}

// Practice returns the ODS code of the GP practice that made referral i.
func (c *Corpus) Practice(i int) string { return fmt.Sprintf("GP%03d", i%c.Practices+1) }

// statuses are the Task statuses of the referrals, in proportion: most
// referrals are finished, a tenth is waiting for the service.
var statuses = []string{"requested", "accepted", "in-progress", "in-progress", "in-progress",
	"completed", "completed", "completed", "completed", "rejected"}

// Status returns the Task status of referral i.
func (c *Corpus) Status(i int) string { return statuses[(i/7)%len(statuses)] }

// PatientID returns the id of referral i's Patient.
func (c *Corpus) PatientID(i int) string { return fmt.Sprintf("p-%06d", i) }

// TaskID returns the id of referral i's Task.
func (c *Corpus) TaskID(i int) string { return fmt.Sprintf("task-%06d", i) }

// ServiceRequestID returns the id of referral i's ServiceRequest.
func (c *Corpus) ServiceRequestID(i int) string { return fmt.Sprintf("sr-%06d", i) }

// NHSNumber returns the NHS number of referral i's Patient.
func (c *Corpus) NHSNumber(i int) string { return fmt.Sprintf("9%09d", i) }

// Updated returns the lastUpdated of referral i's resources.
func (c *Corpus) Updated(i int) time.Time { return c.Start.Add(time.Duration(i) * time.Minute) }

// The identifier systems of the corpus.
const (
	odsSystem      = linkbridge.ODSSystem
	nhsSystem      = linkbridge.NHSNumberSystem
	referralSystem = "https://fhir.example-gp.nhs.uk/Id/referral"
)

// padding makes the bodies about as large as those intake stores (a
// rendered Task with its inputs and outputs is 1 to 3 KB).
var padding = func() string {
	b := make([]byte, 900)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return string(b)
}()

// Each calls fn with every resource of referral i (the argument is reused
// between calls).
func (c *Corpus) Each(i int, fn func(*SeedResource)) { c.each(i, true, fn) }

// each is Each, without the bodies unless withBody.
func (c *Corpus) each(i int, withBody bool, fn func(*SeedResource)) {
	svc, gp, st := c.Service(i), c.Practice(i), c.Status(i)
	at := c.Updated(i)
	pid, srID, taskID := c.PatientID(i), c.ServiceRequestID(i), c.TaskID(i)
	ref := "REF-" + strconv.Itoa(i)
	nhs := c.NHSNumber(i)
	keys := []string{linkbridge.ReferrerAccessKey(gp), linkbridge.ServiceAccessKey(svc)}
	p := func(name, value string) linkbridge.SearchParam {
		return linkbridge.SearchParam{Name: name, Value: value}
	}
	var r SeedResource
	emit := func(typ, id string, at time.Time, extra string, params ...linkbridge.SearchParam) {
		r = SeedResource{Type: typ, ID: id, LastUpdated: at, Params: sqlshared.NormalizeParams(params), Keys: keys}
		if !withBody {
			fn(&r)
			return
		}
		col, err := sqlshared.EncodeParams(r.Params)
		if err != nil {
			panic(err)
		}
		r.ParamsColumn = col
		r.Body = fmt.Appendf(nil, `{"resourceType":%q,"id":%q,"meta":{"versionId":"1","lastUpdated":%q}%s,"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">%s</div>"}}`,
			typ, id, at.Format(time.RFC3339Nano), extra, padding)
		fn(&r)
	}
	emit("Patient", pid, at, fmt.Sprintf(`,"identifier":[{"system":%q,"value":%q}],"generalPractitioner":[{"type":"Organization","identifier":{"system":%q,"value":%q}}]`, nhsSystem, nhs, odsSystem, gp),
		p("identifier", nhsSystem+"|"+nhs), p("general-practitioner:identifier", odsSystem+"|"+gp))
	emit("ServiceRequest", srID, at.Add(time.Second), fmt.Sprintf(`,"identifier":[{"system":%q,"value":%q}],"status":"active","intent":"order","subject":{"reference":"Patient/%s"},"requester":{"type":"Organization","identifier":{"system":%q,"value":%q}},"performer":[{"type":"HealthcareService","identifier":{"system":%q,"value":%q}}]`, referralSystem, ref, pid, odsSystem, gp, odsSystem, svc),
		p("identifier", referralSystem+"|"+ref), p("status", "active"), p("intent", "order"),
		p("category", "http://snomed.info/sct|306206005"), p("code", "http://snomed.info/sct|871731000000106"), p("patient", "Patient/"+pid), p("requester:identifier", odsSystem+"|"+gp), p("performer:identifier", odsSystem+"|"+svc))
	emit("Task", taskID, at.Add(2*time.Second), fmt.Sprintf(`,"identifier":[{"system":%q,"value":%q}],"status":%q,"intent":"order","focus":{"reference":"ServiceRequest/%s"},"for":{"reference":"Patient/%s"},"requester":{"type":"Organization","identifier":{"system":%q,"value":%q}},"owner":{"type":"Organization","identifier":{"system":%q,"value":%q}}`, referralSystem, ref, st, srID, pid, odsSystem, gp, odsSystem, svc),
		p("identifier", referralSystem+"|"+ref), p("status", st), p("intent", "order"),
		p("code", "http://hl7.org/fhir/CodeSystem/task-code|fulfill"), p("patient", "Patient/"+pid), p("focus", "ServiceRequest/"+srID), p("based-on", "ServiceRequest/"+srID),
		p("owner:identifier", odsSystem+"|"+svc), p("requester:identifier", odsSystem+"|"+gp))
	for g := 1; g <= 2; g++ {
		emit("Goal", fmt.Sprintf("goal-%06d-%d", i, g), at.Add(time.Duration(2+g)*time.Second), fmt.Sprintf(`,"lifecycleStatus":"active","subject":{"reference":"Patient/%s"}`, pid),
			p("patient", "Patient/"+pid))
	}
}

// Shape is one kind of search a client makes, run on a seeded corpus: its
// name and its query.
type Shape struct {
	Name  string
	Query *linkbridge.ResourceQuery
}

// Shapes returns the searches whose cost the adapters bound, as clients
// make them (see conformance/ for the polls): over the corpus of
// c.Referrals referrals.
func (c *Corpus) Shapes() []Shape {
	svc := c.Service(0)
	svcKey := &linkbridge.Access{Keys: []string{linkbridge.ServiceAccessKey(svc)}}
	gp := c.Practice(5)
	gpKey := &linkbridge.Access{Keys: []string{linkbridge.ReferrerAccessKey(gp)}}
	mdt := &linkbridge.Access{Keys: []string{linkbridge.ReferrerAccessKey(c.Practice(0)), linkbridge.ReferrerAccessKey(c.Practice(1)), linkbridge.ReferrerAccessKey(c.Practice(2))}}
	mid := c.Referrals / 2
	recent := c.Updated(c.Referrals - 140) // 20 blocks of 7: some requested
	f := func(name string, values ...string) linkbridge.ParamFilter {
		return linkbridge.ParamFilter{Name: name, Values: values}
	}
	return []Shape{
		{"ServiceTasks", &linkbridge.ResourceQuery{Type: "Task", Count: 10, Access: svcKey}},
		{"ServiceTasksByStatus", &linkbridge.ResourceQuery{Type: "Task", Count: 20, Access: svcKey,
			Params: []linkbridge.ParamFilter{f("status", "requested")}}},
		{"ServicePoll", &linkbridge.ResourceQuery{Type: "Task", Count: 20, Access: svcKey,
			Params:      []linkbridge.ParamFilter{f("owner:identifier", odsSystem+"|"+svc), f("status", "requested")},
			LastUpdated: []linkbridge.DateFilter{{Prefix: "ge", Time: recent}}}},
		{"PracticeTasks", &linkbridge.ResourceQuery{Type: "Task", Count: 10, Access: gpKey}},
		{"PracticeTasksByRequester", &linkbridge.ResourceQuery{Type: "Task", Count: 20, Access: gpKey,
			Params: []linkbridge.ParamFilter{f("requester:identifier", odsSystem+"|"+gp)}}},
		{"PracticePoll", &linkbridge.ResourceQuery{Type: "Task", Count: 20, Access: gpKey,
			Params:      []linkbridge.ParamFilter{f("requester:identifier", odsSystem+"|"+gp)},
			LastUpdated: []linkbridge.DateFilter{{Prefix: "ge", Time: recent}}}},
		{"MDTTasks", &linkbridge.ResourceQuery{Type: "Task", Count: 20, Access: mdt}},
		{"GoalsByPatient", &linkbridge.ResourceQuery{Type: "Goal", Count: 20, Access: &linkbridge.Access{Keys: []string{linkbridge.ReferrerAccessKey(c.Practice(mid))}},
			Params: []linkbridge.ParamFilter{f("patient", "Patient/"+c.PatientID(mid))}}},
		// An _include reads each included resource after checking that the
		// caller may see it: a search by id under the caller's keys.
		{"IncludeCheck", &linkbridge.ResourceQuery{Type: "ServiceRequest", Count: 1, Access: svcKey, IDs: []string{c.ServiceRequestID(0)}}},
		// Polling for what changed since the last poll: _lastUpdated=gt,
		// with the requester or owner filter a polling client sends.
		{"ServicePollGt", &linkbridge.ResourceQuery{Type: "Task", Count: 20, Access: svcKey,
			Params:      []linkbridge.ParamFilter{f("owner:identifier", odsSystem+"|"+svc)},
			LastUpdated: []linkbridge.DateFilter{{Prefix: "gt", Time: recent}}}},
		{"PracticePollGt", &linkbridge.ResourceQuery{Type: "Task", Count: 20, Access: gpKey,
			Params:      []linkbridge.ParamFilter{f("requester:identifier", odsSystem+"|"+gp)},
			LastUpdated: []linkbridge.DateFilter{{Prefix: "gt", Time: recent}}}},
		// The chained search Task?patient.identifier=<NHS number system>|N
		// (adapter/httpapi handleSearch): the person's Patients by NHS
		// number, then their Tasks, under the caller's keys (an MDT's).
		{"ChainedNHSPatients", &linkbridge.ResourceQuery{Type: "Patient", Count: 100, Access: mdt,
			Params: []linkbridge.ParamFilter{f("identifier", nhsSystem+"|"+c.NHSNumber(1))}}},
		{"ChainedNHSTasks", &linkbridge.ResourceQuery{Type: "Task", Count: 20, Access: mdt,
			Params: []linkbridge.ParamFilter{f("patient", "Patient/"+c.PatientID(1))}}},
		{"ServiceTasksAccurateTotal", &linkbridge.ResourceQuery{Type: "Task", Count: 10, Access: svcKey, AccurateTotal: true}},
		{"ServiceTasksPage50", &linkbridge.ResourceQuery{Type: "Task", Count: 10, Offset: 500, Access: svcKey}},
	}
}

// Latency is what MeasureShapes found for one shape: its latency
// percentiles over Runs runs, the last run's total, and the error that
// stopped the runs, if any.
type Latency struct {
	Shape         string
	Runs          int
	P50, P99, Max time.Duration
	Total         int
	Exact         bool
	Err           error
}

// MeasureShapes runs each of c's shapes on store repeatedly, for up to runs
// runs or budget, whichever comes first (at least once), each search with
// timeout, and returns the latencies, sorted as the shapes are.
func MeasureShapes(ctx context.Context, store linkbridge.Store, c *Corpus, runs int, budget, timeout time.Duration) []Latency {
	var out []Latency
	for _, sh := range c.Shapes() {
		l := Latency{Shape: sh.Name}
		var ds []time.Duration
		start := time.Now()
		for len(ds) < runs && (len(ds) == 0 || time.Since(start) < budget) {
			sctx, cancel := context.WithTimeout(ctx, timeout)
			t := time.Now()
			res, err := store.SearchResources(sctx, sh.Query)
			d := time.Since(t)
			cancel()
			ds = append(ds, d)
			if err != nil {
				l.Err = err
				break
			}
			l.Total, l.Exact = res.Total, res.TotalExact
		}
		slices.Sort(ds)
		l.Runs = len(ds)
		l.P50 = ds[len(ds)/2]
		l.P99 = ds[min(len(ds)-1, len(ds)*99/100)]
		l.Max = ds[len(ds)-1]
		out = append(out, l)
	}
	return out
}

// LogLatencies writes ls to tb's log as a table.
func LogLatencies(tb testing.TB, title string, ls []Latency) {
	tb.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n%-28s %5s %10s %10s %10s %8s %s\n", title, "shape", "runs", "p50", "p99", "max", "total", "error")
	for _, l := range ls {
		total := strconv.Itoa(l.Total)
		if !l.Exact {
			total = ">=" + total
		}
		errText := ""
		if l.Err != nil {
			errText = l.Err.Error()
		}
		fmt.Fprintf(&b, "%-28s %5d %10s %10s %10s %8s %s\n", l.Shape, l.Runs, round(l.P50), round(l.P99), round(l.Max), total, errText)
	}
	tb.Log(b.String())
}

// round rounds d for a table: microseconds below a millisecond, then
// tenths of a millisecond.
func round(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(100 * time.Microsecond)
}

// Expect evaluates q over the corpus as a store must: it returns the ids
// of the page q asks for, in page order, and the number of every match.
// It reads q's type, ids, parameter filters, date filters (eq, ge, gt, le,
// lt), access keys, Count and Offset.
func (c *Corpus) Expect(q *linkbridge.ResourceQuery) (page []string, total int) {
	type match struct {
		id string
		at time.Time
	}
	c.indexOnce.Do(func() {
		for i := range c.Referrals {
			c.each(i, false, func(r *SeedResource) {
				r.Params, r.Keys = slices.Clone(r.Params), slices.Clone(r.Keys)
				c.index = append(c.index, *r)
			})
		}
	})
	var all []match
	for i := range c.index {
		func(r *SeedResource) {
			if r.Type != q.Type || len(q.IDs) > 0 && !slices.Contains(q.IDs, r.ID) {
				return
			}
			for _, f := range q.Params {
				if !slices.ContainsFunc(r.Params, func(p linkbridge.SearchParam) bool {
					return p.Name == f.Name && p.MatchesAny(f.Values)
				}) {
					return
				}
			}
			if q.Access != nil && !slices.ContainsFunc(r.Keys, func(k string) bool { return slices.Contains(q.Access.Keys, k) }) {
				return
			}
			for _, d := range q.LastUpdated {
				cmp := r.LastUpdated.Compare(d.Time)
				ok := map[string]bool{"": cmp == 0, "eq": cmp == 0, "gt": cmp > 0, "ge": cmp >= 0, "lt": cmp < 0, "le": cmp <= 0}[d.Prefix]
				if !ok {
					return
				}
			}
			all = append(all, match{r.ID, r.LastUpdated})
		}(&c.index[i])
	}
	slices.SortFunc(all, func(a, b match) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	for i := q.Offset; i < len(all) && i < q.Offset+q.Count; i++ {
		page = append(page, all[i].id)
	}
	return page, len(all)
}

// CheckShape runs sh on store and fails tb unless the page and the total
// are what Expect says: the same ids in the same order, and the total
// exact, or (without AccurateTotal) a lower bound past the page.
func (c *Corpus) CheckShape(ctx context.Context, tb testing.TB, store linkbridge.Store, sh Shape) {
	tb.Helper()
	res, err := store.SearchResources(ctx, sh.Query)
	if err != nil {
		tb.Fatalf("%s: %v", sh.Name, err)
	}
	want, total := c.Expect(sh.Query)
	got := make([]string, len(res.Resources))
	for i, r := range res.Resources {
		got[i] = r.ID
	}
	if !slices.Equal(got, want) {
		tb.Errorf("%s: page %v, want %v", sh.Name, got, want)
	}
	q := sh.Query
	switch {
	case res.TotalExact && res.Total != total:
		tb.Errorf("%s: total %d (exact), want %d", sh.Name, res.Total, total)
	case !res.TotalExact && (q.AccurateTotal || res.Total > total || res.Total <= q.Offset+q.Count):
		tb.Errorf("%s: total %d (a bound), want the exact %d or a bound in (%d, %d]", sh.Name, res.Total, total, q.Offset+q.Count, total)
	}
}
