package mdtweb

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
)

// Charts are drawn on the server as inline SVG: no script, readable with
// styles off, and each one named (role="img", <title> and <desc>) and
// followed on the page by a table of the same figures, which is what a
// screen reader user reads (docs/mdt.md#accessibility).

// point is one value of a series at a time.
type point struct {
	At    time.Time
	Value float64
	// Label is what a point's own text says (e.g. "24.1").
	Label string
}

// series is one line of a line chart.
type series struct {
	Name   string
	Points []point
}

// Line styles: colour, dash and marker differ, so lines are told apart
// without colour too. Colours from the NHS identity palette, each at
// least 3:1 against white (WCAG 1.4.11).
var lineStyles = []struct{ colour, dash, marker string }{
	{"#005eb8", "", "circle"},      // NHS blue
	{"#007f3b", "6 3", "square"},   // NHS green
	{"#7c2855", "2 3", "triangle"}, // NHS plum
	{"#330072", "8 3 2 3", "diamond"},
}

// lineChart draws series over time on a fixed y range [lo, hi]; id makes
// the title and description ids unique on the page.
func lineChart(id, title, desc string, lo, hi float64, ticks []float64, ss []series) template.HTML {
	const w, h, left, right, top, bottom = 640.0, 320.0, 48.0, 44.0, 24.0, 76.0
	var first, last time.Time
	for _, s := range ss {
		for _, p := range s.Points {
			if first.IsZero() || p.At.Before(first) {
				first = p.At
			}
			if p.At.After(last) {
				last = p.At
			}
		}
	}
	span := last.Sub(first)
	x := func(t time.Time) float64 {
		if span <= 0 {
			return left + (w-left-right)/2
		}
		return left + (w-left-right)*float64(t.Sub(first))/float64(span)
	}
	y := func(v float64) float64 { return top + (h-top-bottom)*(hi-v)/(hi-lo) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="mdt-chart" viewBox="0 0 %g %g" role="img" aria-labelledby="%s-title %s-desc" focusable="false" xmlns="http://www.w3.org/2000/svg">`, w, h, id, id)
	fmt.Fprintf(&b, `<title id="%s-title">%s</title><desc id="%s-desc">%s</desc>`, id, html.EscapeString(title), id, html.EscapeString(desc))
	// Grid and y axis labels.
	for _, tv := range ticks {
		fmt.Fprintf(&b, `<line x1="%g" x2="%g" y1="%.1f" y2="%.1f" stroke="#d8dde0"/>`, left, w-right, y(tv), y(tv))
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" text-anchor="end" font-size="14" fill="#212b32">%s</text>`, left-8, y(tv)+5, num(tv))
	}
	fmt.Fprintf(&b, `<line x1="%g" x2="%g" y1="%g" y2="%g" stroke="#4c6272"/>`, left, w-right, h-bottom, h-bottom)
	// Dates under the points, once each.
	seen := map[string]bool{}
	for _, s := range ss {
		for _, p := range s.Points {
			d := p.At.In(london).Format("2 Jan 2006")
			if seen[d] {
				continue
			}
			seen[d] = true
			fmt.Fprintf(&b, `<text x="%.1f" y="%g" text-anchor="middle" font-size="13" fill="#212b32">%s</text>`, x(p.At), h-bottom+22, d)
		}
	}
	for i, s := range ss {
		st := lineStyles[i%len(lineStyles)]
		if len(s.Points) > 1 {
			var pts []string
			for _, p := range s.Points {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.At), y(p.Value)))
			}
			dash := ""
			if st.dash != "" {
				dash = ` stroke-dasharray="` + st.dash + `"`
			}
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="3"%s/>`, strings.Join(pts, " "), st.colour, dash)
		}
		for _, p := range s.Points {
			b.WriteString(marker(st.marker, x(p.At), y(p.Value), st.colour))
			if len(ss) == 1 {
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="14" font-weight="bold" fill="#212b32">%s</text>`, x(p.At), y(p.Value)-12, html.EscapeString(p.Label))
			}
		}
	}
	// A key when there is more than one line.
	if len(ss) > 1 {
		// Two to a row.
		for i, s := range ss {
			st := lineStyles[i%len(lineStyles)]
			kx := left + float64(i%2)*(w-left)/2
			ky := h - 30 + float64(i/2)*20
			b.WriteString(marker(st.marker, kx+6, ky-5, st.colour))
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="14" fill="#212b32">%s</text>`, kx+18, ky, html.EscapeString(s.Name))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every text is escaped above; numbers are formatted
}

// marker draws a point's marker.
func marker(kind string, x, y float64, colour string) string {
	switch kind {
	case "square":
		return fmt.Sprintf(`<rect x="%.1f" y="%.1f" width="10" height="10" fill="%s"/>`, x-5, y-5, colour)
	case "triangle":
		return fmt.Sprintf(`<polygon points="%.1f,%.1f %.1f,%.1f %.1f,%.1f" fill="%s"/>`, x, y-6, x-6, y+5, x+6, y+5, colour)
	case "diamond":
		return fmt.Sprintf(`<polygon points="%.1f,%.1f %.1f,%.1f %.1f,%.1f %.1f,%.1f" fill="%s"/>`, x, y-7, x+7, y, x, y+7, x-7, y, colour)
	}
	return fmt.Sprintf(`<circle cx="%.1f" cy="%.1f" r="6" fill="%s"/>`, x, y, colour)
}

// bar is one bar of a bar chart.
type bar struct {
	Label string
	Value float64
	// Text is the value as shown beside the bar.
	Text string
}

// barChart draws horizontal bars, longest = max (or the largest value).
func barChart(id, title, desc string, bars []bar, maxValue float64) template.HTML {
	const w, labelW, rowH, gap = 640.0, 250.0, 28.0, 8.0
	for _, br := range bars {
		maxValue = math.Max(maxValue, br.Value)
	}
	if maxValue <= 0 {
		maxValue = 1
	}
	h := float64(len(bars))*(rowH+gap) + gap
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="mdt-chart" viewBox="0 0 %g %g" role="img" aria-labelledby="%s-title %s-desc" focusable="false" xmlns="http://www.w3.org/2000/svg">`, w, h, id, id)
	fmt.Fprintf(&b, `<title id="%s-title">%s</title><desc id="%s-desc">%s</desc>`, id, html.EscapeString(title), id, html.EscapeString(desc))
	for i, br := range bars {
		y := gap + float64(i)*(rowH+gap)
		label := br.Label
		if len([]rune(label)) > 34 {
			label = string([]rune(label)[:33]) + "…"
		}
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" text-anchor="end" font-size="14" fill="#212b32">%s</text>`, labelW-8, y+rowH/2+5, html.EscapeString(label))
		bw := (w - labelW - 70) * br.Value / maxValue
		fmt.Fprintf(&b, `<rect x="%g" y="%.1f" width="%.1f" height="%g" fill="#005eb8"/>`, labelW, y, bw, rowH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="14" fill="#212b32">%s</text>`, labelW+bw+6, y+rowH/2+5, html.EscapeString(br.Text))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every text is escaped above
}

// num formats a figure without trailing zeros: 24, 24.1, 24.15.
func num(v float64) string {
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}
