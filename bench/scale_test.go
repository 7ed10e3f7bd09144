package bench_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linkbridge/linkbridge/bench"
)

// TestScaleResultsSave: the scale results are saved as JSON that reads
// back the same, a Markdown table with a column per backend and size and
// a row per figure (each query's p50/p99 from its point), and one
// well-formed SVG chart per figure.
func TestScaleResultsSave(t *testing.T) {
	q := func(p50, p99 float64) bench.Latency { return bench.Latency{P50: p50, P99: p99} }
	res := &bench.ScaleResults{Date: "2026-12-05", Command: "linkbridge bench scale", Machine: "test", Points: []bench.ScalePoint{
		{Backend: "sqlite", Referrals: 0, Queries: map[string]bench.Latency{"inbox": q(1.5, 4.25)}, IntakeRPS: 700, Ratio: 0.5, PeakRSSMB: 120, StartupMS: 300},
		{Backend: "sqlite", Referrals: 100000, Queries: map[string]bench.Latency{"inbox": q(2, 9.75)}, IntakeRPS: 650, DBBytes: 4 << 30, BytesPerReferral: 42949,
			PeakRSSMB: 140, StartupMS: 900, SeedRate: 600, DrainPending: 3000, DrainPerS: 1200, DrainLeft: 500},
		{Backend: "postgres", Referrals: 0, Queries: map[string]bench.Latency{"inbox": q(3, 7)}, IntakeRPS: 500, PeakRSSMB: 100, StartupMS: 400,
			Server: "PostgreSQL 15.5, shared_buffers 4GB"},
	}}
	dir := t.TempDir()
	if err := res.Save(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "scale.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back bench.ScaleResults
	if err := json.Unmarshal(b, &back); err != nil || len(back.Points) != 3 || back.Points[1].Queries["inbox"].P99 != 9.75 {
		t.Fatalf("scale.json reads back as %+v, %v", back, err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "scale.md"))
	if err != nil {
		t.Fatal(err)
	}
	var header, inbox, bytesRow, drain string
	for _, l := range strings.Split(string(md), "\n") {
		switch {
		case strings.HasPrefix(l, "| figure"):
			header = l
		case strings.HasPrefix(l, "| inbox "):
			inbox = l
		case strings.HasPrefix(l, "| bytes / referral"):
			bytesRow = l
		case strings.HasPrefix(l, "| relay drain"):
			drain = l
		}
	}
	// Columns: postgres first (by name), then sqlite by size.
	if !strings.Contains(header, "postgres 0") || strings.Index(header, "sqlite 0") > strings.Index(header, "sqlite 100k") {
		t.Errorf("header %q", header)
	}
	if !strings.Contains(inbox, "3.0 / 7.0") || !strings.Contains(inbox, "2.0 / 9.8") || !strings.Contains(inbox, "p99 ≤ 25") {
		t.Errorf("inbox row %q", inbox)
	}
	if !strings.Contains(bytesRow, "41.9 KB") {
		t.Errorf("bytes row %q", bytesRow)
	}
	// A drain the wait ended before it was done says what it left queued.
	if !strings.Contains(drain, "1200 (3000, 500 left)") || back.Points[1].DrainLeft != 500 {
		t.Errorf("drain row %q, scale.json drain_left %d", drain, back.Points[1].DrainLeft)
	}
	// A point's server settings are said beside the table, once.
	if n := strings.Count(string(md), "postgres 0: PostgreSQL 15.5, shared_buffers 4GB."); n != 1 || back.Points[2].Server == "" {
		t.Errorf("scale.md states the postgres point's server %d times (want once), scale.json %q", n, back.Points[2].Server)
	}
	for _, c := range []string{"queries-p99", "intake", "bytes-per-referral", "rss", "startup"} {
		svg, err := os.ReadFile(filepath.Join(dir, c+".svg"))
		if err != nil {
			t.Fatalf("chart %s: %v", c, err)
		}
		d := xml.NewDecoder(bytes.NewReader(svg))
		for {
			if _, err := d.Token(); err != nil {
				if err.Error() != "EOF" {
					t.Errorf("chart %s is not well-formed SVG: %v", c, err)
				}
				break
			}
		}
		if !bytes.Contains(svg, []byte("<svg")) {
			t.Errorf("chart %s holds no svg element", c)
		}
		if !strings.Contains(string(md), "("+c+".svg)") {
			t.Errorf("scale.md does not link %s.svg", c)
		}
	}
}

// TestScaleResultsMerged: a run's points replace an earlier run's at the
// same backend and size and keep the others, ordered by backend then size,
// with both commands; the merged results save and load back.
func TestScaleResultsMerged(t *testing.T) {
	earlier := &bench.ScaleResults{Command: "linkbridge bench scale --sizes 0,10000", Points: []bench.ScalePoint{
		{Backend: "sqlite", Referrals: 0, IntakeRPS: 1}, {Backend: "sqlite", Referrals: 10000, IntakeRPS: 2}, {Backend: "postgres", Referrals: 0, IntakeRPS: 3},
	}}
	now := &bench.ScaleResults{Date: "2026-12-05", Command: "linkbridge bench scale --sizes 10000,100000 --backends sqlite", Points: []bench.ScalePoint{
		{Backend: "sqlite", Referrals: 10000, IntakeRPS: 20}, {Backend: "sqlite", Referrals: 100000, IntakeRPS: 30},
	}}
	m := now.Merged(earlier)
	var got []string
	for _, p := range m.Points {
		got = append(got, fmt.Sprintf("%s/%d/%g", p.Backend, p.Referrals, p.IntakeRPS))
	}
	if want := "postgres/0/3 sqlite/0/1 sqlite/10000/20 sqlite/100000/30"; strings.Join(got, " ") != want {
		t.Errorf("merged points %v, want %s", got, want)
	}
	if m.Command != earlier.Command+"\n"+now.Command || len(now.Points) != 2 {
		t.Errorf("merged command %q (or the run's own points changed: %d)", m.Command, len(now.Points))
	}
	// Points that record their command: one whose points were all
	// measured again is dropped from the merged Command.
	a := &bench.ScaleResults{Command: "A", Points: []bench.ScalePoint{{Backend: "sqlite", Referrals: 0, Command: "A"}}}
	b := (&bench.ScaleResults{Command: "B", Points: []bench.ScalePoint{{Backend: "postgres", Referrals: 0, Command: "B"}}}).Merged(a)
	c := (&bench.ScaleResults{Command: "C", Points: []bench.ScalePoint{{Backend: "sqlite", Referrals: 0, Command: "C"}}}).Merged(b)
	if b.Command != "A\nB" || c.Command != "B\nC" {
		t.Errorf("merged commands %q then %q, want \"A\\nB\" then \"B\\nC\"", b.Command, c.Command)
	}
	if now.Merged(nil) != now {
		t.Error("merging nothing changed the results")
	}
	dir := t.TempDir()
	if back, err := bench.LoadScaleResults(dir); back != nil || err != nil {
		t.Fatalf("LoadScaleResults of an empty directory = %v, %v", back, err)
	}
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	back, err := bench.LoadScaleResults(dir)
	if err != nil || len(back.Points) != 4 || back.Command != m.Command {
		t.Fatalf("LoadScaleResults = %+v, %v", back, err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "scale.md"))
	if !strings.Contains(string(md), "`"+earlier.Command+"`") || !strings.Contains(string(md), "`"+now.Command+"`") {
		t.Errorf("scale.md does not name both commands:\n%s", md)
	}
}
