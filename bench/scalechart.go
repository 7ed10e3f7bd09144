package bench

import (
	"fmt"
	"image/color"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// scaleChart is one SVG chart of the scale results: series against store
// size.
type scaleChart struct {
	file, title, y string
	// series returns the chart's lines: a label and the figure of a
	// point (ok false: the point has none).
	series func(r *ScaleResults) []scaleSeries
}

type scaleSeries struct {
	label string
	value func(p ScalePoint) (float64, bool)
	// backend restricts the series to one backend's points ("": its
	// label names the backend, and so do its points).
	backend string
}

// perBackend makes one series per backend of a figure.
func perBackend(r *ScaleResults, label string, f func(p ScalePoint) (float64, bool)) []scaleSeries {
	var out []scaleSeries
	for _, b := range r.backends() {
		out = append(out, scaleSeries{label: b + " " + label, backend: b, value: f})
	}
	return out
}

func (r *ScaleResults) backends() []string {
	var bs []string
	for _, p := range r.Points {
		if !slices.Contains(bs, p.Backend) {
			bs = append(bs, p.Backend)
		}
	}
	return bs
}

var scaleCharts = []scaleChart{
	{"queries-p99", "Reads: p99 against store size", "p99 (ms)", func(r *ScaleResults) []scaleSeries {
		var out []scaleSeries
		for _, q := range ScaleQueries {
			out = append(out, perBackend(r, q.Name, func(p ScalePoint) (float64, bool) {
				l, ok := p.Queries[q.Name]
				return l.P99, ok
			})...)
		}
		return out
	}},
	{"intake", "Intake throughput against store size", "referrals/s", func(r *ScaleResults) []scaleSeries {
		return append(perBackend(r, "durable intake", func(p ScalePoint) (float64, bool) { return p.IntakeRPS, p.IntakeRPS > 0 }),
			perBackend(r, "parse-only (same run)", func(p ScalePoint) (float64, bool) { return p.ParseOnlyRPS, p.ParseOnlyRPS > 0 })...)
	}},
	{"bytes-per-referral", "Store size per referral", "KB per referral", func(r *ScaleResults) []scaleSeries {
		return perBackend(r, "", func(p ScalePoint) (float64, bool) { return p.BytesPerReferral / 1024, p.Referrals > 0 })
	}},
	{"rss", "Gateway peak RSS", "MB", func(r *ScaleResults) []scaleSeries {
		return perBackend(r, "", func(p ScalePoint) (float64, bool) { return p.PeakRSSMB, p.PeakRSSMB > 0 })
	}},
	{"startup", "Gateway start-up time", "ms", func(r *ScaleResults) []scaleSeries {
		return perBackend(r, "", func(p ScalePoint) (float64, bool) { return p.StartupMS, p.StartupMS > 0 })
	}},
}

// Charts writes each chart as an SVG file into dir.
func (r *ScaleResults) Charts(dir string) error {
	for _, c := range scaleCharts {
		p := plot.New()
		p.Title.Text = c.title
		p.X.Label.Text = "referrals in the store"
		p.Y.Label.Text = c.y
		p.Y.Min = 0
		p.Legend.Top = true
		p.Legend.Left = true
		p.Add(plotter.NewGrid())
		for i, s := range c.series(r) {
			var xys plotter.XYs
			for _, pt := range r.Points {
				if s.backend != "" && pt.Backend != s.backend {
					continue
				}
				if v, ok := s.value(pt); ok {
					xys = append(xys, plotter.XY{X: float64(pt.Referrals), Y: v})
				}
			}
			if len(xys) == 0 {
				continue
			}
			slices.SortFunc(xys, func(a, b plotter.XY) int { return int(a.X - b.X) })
			line, points, err := plotter.NewLinePoints(xys)
			if err != nil {
				return err
			}
			line.Color = plotutil.Color(i)
			points.Color = line.Color
			points.Shape = plotutil.Shape(i)
			if s.backend == "postgres" {
				line.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
			}
			p.Add(line, points)
			p.Legend.Add(s.label, line, points)
		}
		p.BackgroundColor = color.White
		if err := p.Save(7*vg.Inch, 4.5*vg.Inch, filepath.Join(dir, c.file+".svg")); err != nil {
			return fmt.Errorf("chart %s: %w", c.file, err)
		}
	}
	return nil
}
