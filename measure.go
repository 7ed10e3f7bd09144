package linkbridge

import (
	"fmt"
	"math"
	"time"
)

// Instrument names an outcome measure (docs/domain.md#outcome-measures).
type Instrument string

// The outcome measures linkbridge records.
const (
	// ONS4 is the ONS personal wellbeing questions: four items 0–10, kept
	// separate (life satisfaction, worthwhile, happy yesterday, anxious
	// yesterday — anxiety is higher-is-worse). ONS does not combine them.
	ONS4 Instrument = "ONS4"
	// WEMWBS is the Warwick-Edinburgh Mental Wellbeing Scale: 14 items 1–5,
	// summed to 14–70.
	WEMWBS Instrument = "WEMWBS"
	// SWEMWBS is the short WEMWBS: 7 items 1–5, raw 7–35, converted to a
	// metric score with the official table.
	SWEMWBS Instrument = "SWEMWBS"
	// UCLA3 is the UCLA 3-item loneliness scale: 3 items 1–3, summed to 3–9
	// (higher is lonelier).
	UCLA3 Instrument = "UCLA3"
)

// Timepoint says when in the episode a measure was taken.
type Timepoint string

// Timepoints of an outcome measure.
const (
	TimepointBaseline Timepoint = "baseline"
	TimepointReview   Timepoint = "review"
	TimepointFinal    Timepoint = "final"
)

// ONS4 item names, in questionnaire order.
var ONS4Items = []string{"life-satisfaction", "worthwhile", "happy-yesterday", "anxious-yesterday"}

// instrumentSpec gives each instrument's item count and item range.
var instrumentSpec = map[Instrument]struct{ items, min, max int }{
	ONS4:    {4, 0, 10},
	WEMWBS:  {14, 1, 5},
	SWEMWBS: {7, 1, 5},
	UCLA3:   {3, 1, 3},
}

// swemwbsMetric is the official SWEMWBS raw-to-metric conversion table
// (Warwick Medical School; docs/domain.md#swemwbs-conversion-table, which
// measure_test.go checks this map against). Never computed by formula.
var swemwbsMetric = map[int]float64{
	7: 7.00, 8: 9.51, 9: 11.25, 10: 12.40, 11: 13.33, 12: 14.08, 13: 14.75, 14: 15.32,
	15: 15.84, 16: 16.36, 17: 16.88, 18: 17.43, 19: 17.98, 20: 18.59, 21: 19.25, 22: 19.98,
	23: 20.73, 24: 21.54, 25: 22.35, 26: 23.21, 27: 24.11, 28: 25.03, 29: 26.02, 30: 27.03,
	31: 28.13, 32: 29.31, 33: 30.70, 34: 32.55, 35: 35.00,
}

// SWEMWBSMetric converts a SWEMWBS raw score (7–35) to its metric score by
// the official table.
func SWEMWBSMetric(raw int) (float64, bool) {
	m, ok := swemwbsMetric[raw]
	return m, ok
}

// Measure is one completed outcome measure.
type Measure struct {
	ID         string     `json:"id"`
	ReferralID string     `json:"referralId"`
	Instrument Instrument `json:"instrument"`
	Timepoint  Timepoint  `json:"timepoint"`
	// Items are the item scores in questionnaire order.
	Items []int `json:"items"`
	// Total is the summed score (WEMWBS, SWEMWBS raw, UCLA3); zero for ONS4,
	// whose items are never combined.
	Total int `json:"total,omitempty"`
	// Metric is the SWEMWBS metric score from the conversion table.
	Metric float64 `json:"metric,omitempty"`
	// TakenAt is when the person completed it.
	TakenAt   time.Time `json:"takenAt"`
	CreatedAt time.Time `json:"createdAt"`
	// Correction records how the measure was corrected since it was
	// recorded (docs/domain.md#corrections); set by the server only.
	Correction
}

// Score validates the item set and computes Total and Metric. An incomplete
// item set or an item out of range is EUNPROCESSABLE and names the item.
func (m *Measure) Score() error {
	spec, ok := instrumentSpec[m.Instrument]
	if !ok {
		return Errorf(EUNPROCESSABLE, "unknown instrument %q (ONS4, WEMWBS, SWEMWBS, UCLA3)", m.Instrument).At("instrument")
	}
	switch m.Timepoint {
	case TimepointBaseline, TimepointReview, TimepointFinal:
	default:
		return Errorf(EUNPROCESSABLE, "timepoint must be baseline, review or final, not %q", m.Timepoint).At("timepoint")
	}
	if len(m.Items) != spec.items {
		return Errorf(EUNPROCESSABLE, "%s needs all %d items, got %d", m.Instrument, spec.items, len(m.Items)).At("items")
	}
	total := 0
	for i, v := range m.Items {
		if v < spec.min || v > spec.max {
			return Errorf(EUNPROCESSABLE, "%s item %d is %d, outside %d–%d", m.Instrument, i+1, v, spec.min, spec.max).At(fmt.Sprintf("items[%d]", i))
		}
		total += v
	}
	m.Total, m.Metric = 0, 0
	switch m.Instrument {
	case WEMWBS, UCLA3:
		m.Total = total
	case SWEMWBS:
		m.Total = total
		m.Metric, _ = SWEMWBSMetric(total)
	}
	if m.TakenAt.IsZero() {
		return Errorf(EUNPROCESSABLE, "the date the measure was taken is required").At("takenAt")
	}
	return nil
}

// ScoreChange is a follow-up measure's change from its baseline: the
// follow-up's scores minus the baseline's, for the same instrument in the
// same referral (docs/domain.md#change-from-baseline).
type ScoreChange struct {
	// BaselineID is the baseline measure compared with.
	BaselineID string `json:"baselineId"`
	// Score is the change of the instrument's score, the one its FHIR
	// Observation carries as its value: the total for WEMWBS and UCLA3,
	// the metric score for SWEMWBS (two decimals). Nil for ONS4, whose
	// answers are never combined into a score.
	Score *float64 `json:"score,omitempty"`
	// Items is each item's change, in questionnaire order.
	Items []int `json:"items"`
}

// HeadlineScore is the score a measure reports: the metric score for
// SWEMWBS, the total for WEMWBS and UCLA3. ok is false for ONS4 (no score).
func (m *Measure) HeadlineScore() (score float64, ok bool) {
	switch m.Instrument {
	case SWEMWBS:
		return m.Metric, true
	case WEMWBS, UCLA3:
		return float64(m.Total), true
	}
	return 0, false
}

// ChangesFromBaseline computes, for each follow-up measure (review or
// final) of ms, its change from baseline, keyed by the follow-up's id. The
// baseline is the latest baseline measure of the same instrument and
// referral taken no later than the follow-up (a later one among baselines
// taken at the same time); a follow-up without one has no entry, and so
// has a baseline itself. Measures withdrawn as entered in error count
// neither as baselines nor as follow-ups. ms are scored measures (Score).
func ChangesFromBaseline(ms []*Measure) map[string]*ScoreChange {
	out := map[string]*ScoreChange{}
	for _, f := range ms {
		if f.Timepoint == TimepointBaseline || f.Withdrawn() {
			continue
		}
		var base *Measure
		for _, b := range ms {
			if b.Timepoint != TimepointBaseline || b.Withdrawn() || b.Instrument != f.Instrument || b.ReferralID != f.ReferralID ||
				b.TakenAt.After(f.TakenAt) || len(b.Items) != len(f.Items) {
				continue
			}
			if base == nil || !b.TakenAt.Before(base.TakenAt) {
				base = b
			}
		}
		if base == nil {
			continue
		}
		c := &ScoreChange{BaselineID: base.ID, Items: make([]int, len(f.Items))}
		for i := range f.Items {
			c.Items[i] = f.Items[i] - base.Items[i]
		}
		if fs, ok := f.HeadlineScore(); ok {
			bs, _ := base.HeadlineScore()
			// Two decimals, as the metric scores are published: 23.21 -
			// 16.36 is 6.85, not 6.850000000000001.
			d := math.Round((fs-bs)*100) / 100
			c.Score = &d
		}
		out[f.ID] = c
	}
	return out
}
