package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// The scale benchmark ("linkbridge bench scale"): the same figures on
// stores of growing size, each backend in turn (docs/performance.md#the-scale-benchmark). The
// command wires the stores, the seeding and the gateway process; this file
// measures one point and renders the results.

// ScaleQuery is one read the scale benchmark times on a store: a request
// path (relative to the gateway's root) built from a sample of the
// store's data.
type ScaleQuery struct {
	// Name is the row label ("task-by-nhs", "inbox", ...).
	Name string
	// Path builds the i-th request's path.
	Path func(s *ScaleSample, i int) string
	// Target is issue 18's target for the read ("p99 ≤ 25"), "—" where
	// it sets none (the reports: measured, not targeted).
	Target string
}

// ScaleSample is what the queries are built from: referrals, people and
// organisations read from the store through the gateway's API.
type ScaleSample struct {
	ReferralIDs []string
	NHSNumbers  []string
	// ServiceODS is the service whose inbox and caseload are read;
	// PracticeODS a referring practice.
	ServiceODS, PracticeODS string
	// Since is the polling clients' _lastUpdated bound.
	Since time.Time
	// Month is the month of the report (YYYY-MM).
	Month string
}

// ScaleQueries are the reads issue 18 measures. It sets a target for the
// searches, the inbox, the case view and the board: p99 ≤ 25 ms on a
// million referrals, and within 2× of the empty store's figure; the
// caseload and the month's report are measured without one.
var ScaleQueries = []ScaleQuery{
	{"task-by-nhs", func(s *ScaleSample, i int) string {
		return "/fhir/Task?patient.identifier=" + url.QueryEscape("https://fhir.nhs.uk/Id/nhs-number|"+pick(s.NHSNumbers, i))
	}, "p99 ≤ 25"},
	{"task-poll", func(s *ScaleSample, i int) string {
		return "/fhir/Task?owner:identifier=" + url.QueryEscape("https://fhir.nhs.uk/Id/ods-organization-code|"+s.ServiceODS) +
			"&_lastUpdated=gt" + url.QueryEscape(s.Since.UTC().Format(time.RFC3339))
	}, "p99 ≤ 25"},
	{"inbox", func(s *ScaleSample, i int) string {
		return "/sp/v1/referrals?service=" + s.ServiceODS + "&status=requested&limit=20"
	}, "p99 ≤ 25"},
	{"caseload", func(s *ScaleSample, i int) string { return "/sp/v1/reports/caseload?service=" + s.ServiceODS }, "—"},
	{"report-month", func(s *ScaleSample, i int) string {
		return "/sp/v1/reports/period?service=" + s.ServiceODS + "&from=" + s.Month + "&to=" + s.Month
	}, "—"},
	{"case-view", func(s *ScaleSample, i int) string { return "/sp/v1/referrals/" + pick(s.ReferralIDs, i) }, "p99 ≤ 25"},
	{"mdt-board", func(s *ScaleSample, i int) string { return "/mdt?practice=" + s.PracticeODS }, "p99 ≤ 25"},
}

func pick(xs []string, i int) string {
	if len(xs) == 0 {
		return "none"
	}
	return xs[i%len(xs)]
}

// ScalePoint is the figures of one backend at one store size.
type ScalePoint struct {
	Backend   string `json:"backend"`
	Referrals int    `json:"referrals"`
	// SeedRate is the seeding rate that reached this size (referrals/s;
	// 0 for the empty store).
	SeedRate float64 `json:"seed_per_s,omitempty"`
	// StartupMS is the gateway's start-up time: process start to /readyz.
	StartupMS float64 `json:"startup_ms"`
	// Queries are the reads' latencies, by ScaleQuery name.
	Queries map[string]Latency `json:"queries_ms"`
	// Intake is the durable intake load, ParseOnly the parse-only server
	// in the same run, Ratio their throughput ratio.
	IntakeRPS    float64 `json:"intake_per_s"`
	IntakeP99MS  float64 `json:"intake_p99_ms"`
	IntakeErrors int     `json:"intake_errors,omitempty"`
	ParseOnlyRPS float64 `json:"parse_only_per_s"`
	Ratio        float64 `json:"ratio"`
	// DrainPerS is the relay's write-back rate to the reference GP, from
	// the outbox the store held at start-up (0 when it held none).
	DrainPerS    float64 `json:"drain_per_s,omitempty"`
	DrainPending int     `json:"drain_pending,omitempty"`
	// DrainLeft is how many of DrainPending were still queued when the
	// wait for the drain ended (bench scale --drain-for): the relay then
	// went on writing back beside intake and the reads, which were not
	// measured alone.
	DrainLeft int `json:"drain_left,omitempty"`
	// DBBytes is the store's size on disk; BytesPerReferral that over
	// Referrals.
	DBBytes          int64   `json:"db_bytes"`
	BytesPerReferral float64 `json:"bytes_per_referral,omitempty"`
	// PeakRSSMB is the gateway process's peak resident set.
	PeakRSSMB float64 `json:"peak_rss_mb"`
	// Migrations is the time of each migration run at this size, by
	// name (only where the command measured them).
	Migrations map[string]float64 `json:"migrations_ms,omitempty"`
	// Command is the command that measured this point ("" in results
	// saved before points recorded it).
	Command string `json:"command,omitempty"`
	// Server is the database server's version and the settings that bear
	// on the figures (PostgreSQL's; "" for SQLite and in results saved
	// before points recorded it).
	Server string `json:"server,omitempty"`
}

// ScaleResults is a scale benchmark's output (bench/results/scale.json).
type ScaleResults struct {
	Date    string       `json:"date"`
	Command string       `json:"command"`
	Machine string       `json:"machine"`
	Points  []ScalePoint `json:"points"`
}

// MeasureQueries times each query runs times, one at a time (after a few
// unmeasured warm-up requests), against the gateway at root. Any answer
// but 200 fails the run: a figure of errors is no figure.
func MeasureQueries(ctx context.Context, client *http.Client, root string, s *ScaleSample, queries []ScaleQuery, runs int) (map[string]Latency, error) {
	out := map[string]Latency{}
	for _, q := range queries {
		var ds []time.Duration
		for i := -5; i < runs; i++ {
			path := q.Path(s, max(i, 0))
			t0 := time.Now()
			st, err := get(ctx, client, root+path)
			d := time.Since(t0)
			if err != nil {
				return nil, fmt.Errorf("%s: GET %s: %w", q.Name, path, err)
			}
			if st != http.StatusOK {
				return nil, fmt.Errorf("%s: GET %s: HTTP %d", q.Name, path, st)
			}
			if i >= 0 {
				ds = append(ds, d)
			}
		}
		out[q.Name] = latencySummary(ds)
	}
	return out, nil
}

func getJSON(ctx context.Context, client *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func get(ctx context.Context, client *http.Client, u string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// Sample reads a sample of the store through the gateway: referrals of
// the service in any state (the case view's ids), their people's NHS
// numbers and a practice that referred them.
func Sample(ctx context.Context, client *http.Client, root, serviceODS string, n int) (*ScaleSample, error) {
	s := &ScaleSample{ServiceODS: serviceODS, Since: time.Now().Add(-15 * time.Minute), Month: time.Now().UTC().Format("2006-01")}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/sp/v1/referrals?service=%s&limit=%d", root, serviceODS, n), nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	var page struct {
		Items []struct {
			ID          string `json:"id"`
			ReferrerODS string `json:"referrerOds"`
		} `json:"items"`
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("sample: HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return nil, fmt.Errorf("sample: %w", err)
	}
	for i, r := range page.Items {
		s.ReferralIDs = append(s.ReferralIDs, r.ID)
		if s.PracticeODS == "" {
			s.PracticeODS = r.ReferrerODS
		}
		if i >= 20 {
			continue
		}
		// The person's NHS number, from the case view.
		var cv struct {
			Person struct {
				NHSNumber string `json:"nhsNumber"`
			} `json:"person"`
		}
		if err := getJSON(ctx, client, root+"/sp/v1/referrals/"+r.ID, &cv); err != nil {
			return nil, fmt.Errorf("sample: %w", err)
		}
		if cv.Person.NHSNumber != "" {
			s.NHSNumbers = append(s.NHSNumbers, cv.Person.NHSNumber)
		}
	}
	if len(s.ReferralIDs) == 0 {
		return nil, errors.New("sample: the store holds no referral of the service")
	}
	return s, nil
}

// DirSize is the size of the files of a SQLite store (the database, its
// WAL and shared memory).
func DirSize(db string) int64 {
	var n int64
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if fi, err := os.Stat(db + suffix); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// WriteTable renders the results as a Markdown table, one row per figure
// and one column per backend and size, with the targets.
func (r *ScaleResults) WriteTable(w io.Writer) error {
	pts := slices.Clone(r.Points)
	slices.SortStableFunc(pts, func(a, b ScalePoint) int {
		if a.Backend != b.Backend {
			return strings.Compare(a.Backend, b.Backend)
		}
		return a.Referrals - b.Referrals
	})
	var b strings.Builder
	hdr := "| figure\t target"
	sep := "|---\t---"
	for _, p := range pts {
		hdr += fmt.Sprintf("\t %s %s", p.Backend, humanCount(p.Referrals))
		sep += "\t---:"
	}
	b.WriteString(hdr + "\t\n")
	b.WriteString(sep + "\t\n")
	row := func(name, target string, f func(p ScalePoint) string) {
		line := "| " + name + "\t " + target
		for _, p := range pts {
			line += "\t " + f(p)
		}
		b.WriteString(line + "\t\n")
	}
	for _, q := range ScaleQueries {
		row(q.Name+" p50 / p99 ms", q.Target, func(p ScalePoint) string {
			l, ok := p.Queries[q.Name]
			if !ok {
				return "–"
			}
			return fmt.Sprintf("%.1f / %.1f", l.P50, l.P99)
		})
	}
	row("intake req/s (p99 ms)", "≥ 0.85 × empty", func(p ScalePoint) string { return fmt.Sprintf("%.0f (%.0f)", p.IntakeRPS, p.IntakeP99MS) })
	row("intake / parse-only", "≥ 0.8", func(p ScalePoint) string { return fmt.Sprintf("%.2f", p.Ratio) })
	row("relay drain /s", "", func(p ScalePoint) string {
		if p.DrainPending == 0 {
			return "–"
		}
		if p.DrainLeft > 0 {
			return fmt.Sprintf("%.0f (%d, %d left)", p.DrainPerS, p.DrainPending, p.DrainLeft)
		}
		return fmt.Sprintf("%.0f (%d)", p.DrainPerS, p.DrainPending)
	})
	row("store size", "", func(p ScalePoint) string { return humanBytes(p.DBBytes) })
	row("bytes / referral", "≤ 40 KB", func(p ScalePoint) string {
		if p.Referrals == 0 {
			return "–"
		}
		return humanBytes(int64(p.BytesPerReferral))
	})
	row("gateway peak RSS MB", "≤ 150", func(p ScalePoint) string { return fmt.Sprintf("%.0f", p.PeakRSSMB) })
	row("start-up ms", "", func(p ScalePoint) string { return fmt.Sprintf("%.0f", p.StartupMS) })
	row("seeding referrals/s", "≥ 556", func(p ScalePoint) string {
		if p.SeedRate == 0 {
			return "–"
		}
		return fmt.Sprintf("%.0f", p.SeedRate)
	})
	tw := tabwriter.NewWriter(w, 0, 2, 1, ' ', tabwriter.Debug)
	if _, err := io.WriteString(tw, b.String()); err != nil {
		return err
	}
	return tw.Flush()
}

func humanCount(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// LoadScaleResults reads the scale.json that Save wrote into dir; nil and no
// error when there is none.
func LoadScaleResults(dir string) (*ScaleResults, error) {
	b, err := os.ReadFile(filepath.Join(dir, "scale.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r ScaleResults
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "scale.json"), err)
	}
	return &r, nil
}

// Merged returns r with the points of earlier that r did not measure (a
// backend and size of its own replaces earlier's), ordered by backend then
// size. Its Command is the commands behind the points it keeps, one a line,
// earlier's first: a command whose points were all measured again is
// dropped (earlier's whole Command is kept when one of its points does
// not record its own). r's date and machine are kept.
func (r *ScaleResults) Merged(earlier *ScaleResults) *ScaleResults {
	if earlier == nil {
		return r
	}
	out := *r
	out.Points = slices.Clone(r.Points)
	for _, p := range earlier.Points {
		if !slices.ContainsFunc(r.Points, func(q ScalePoint) bool { return q.Backend == p.Backend && q.Referrals == p.Referrals }) {
			out.Points = append(out.Points, p)
		}
	}
	slices.SortStableFunc(out.Points, func(a, b ScalePoint) int {
		if c := strings.Compare(a.Backend, b.Backend); c != 0 {
			return c
		}
		return a.Referrals - b.Referrals
	})
	var cmds []string
	add := func(c string) {
		for _, line := range strings.Split(c, "\n") {
			if line != "" && !slices.Contains(cmds, line) {
				cmds = append(cmds, line)
			}
		}
	}
	for _, p := range out.Points {
		if !slices.ContainsFunc(r.Points, func(q ScalePoint) bool { return q.Backend == p.Backend && q.Referrals == p.Referrals }) {
			if p.Command == "" {
				add(earlier.Command)
			} else {
				add(p.Command)
			}
		}
	}
	add(r.Command)
	out.Command = strings.Join(cmds, "\n")
	return &out
}

// Save writes the results as JSON, the Markdown table and the charts into
// dir.
func (r *ScaleResults) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "scale.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	var md strings.Builder
	fmt.Fprintf(&md, "# Scale benchmark results\n\n%s, %s.\n\n", r.Date, r.Machine)
	for _, c := range strings.Split(r.Command, "\n") {
		fmt.Fprintf(&md, "`%s`\n\n", c)
	}
	if err := r.WriteTable(&md); err != nil {
		return err
	}
	for _, p := range r.Points {
		if p.Server != "" {
			fmt.Fprintf(&md, "\n%s %s: %s.\n", p.Backend, humanCount(p.Referrals), p.Server)
		}
	}
	md.WriteString("\nCharts: ")
	for i, c := range scaleCharts {
		if i > 0 {
			md.WriteString(", ")
		}
		fmt.Fprintf(&md, "[%s](%s.svg)", c.title, c.file)
	}
	md.WriteString(".\n")
	if err := os.WriteFile(filepath.Join(dir, "scale.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	return r.Charts(dir)
}
