// Package senddoc renders the "Social prescribing update" that the GP
// Connect Send Document route files into a practice's record: the document
// a practice needs at the points of a referral it must know about (the
// person accepted or declined, a plan agreed, discharge), as a PDF and as
// structured content, wrapped in an ITK3 FHIR STU3 message
// (docs/send-document.md). It does no I/O: casework calls it in the
// transaction of the change that reached the trigger, and the outbox
// carries the rendered message to MESH.
package senddoc

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/linkbridge/linkbridge"
)

// Trigger names a point of a referral at which the practice is sent a
// document.
type Trigger string

// Triggers (docs/send-document.md#triggers).
const (
	TriggerAccepted   Trigger = "accepted"
	TriggerDeclined   Trigger = "declined"
	TriggerPlanAgreed Trigger = "plan-agreed"
	TriggerDischarged Trigger = "discharged"
)

// AllTriggers lists the triggers in the order of an episode.
var AllTriggers = []Trigger{TriggerAccepted, TriggerDeclined, TriggerPlanAgreed, TriggerDischarged}

// DefaultTriggers are the points a practice is told of unless configured
// otherwise: the outcome of the referral (accepted or declined) and the
// discharge.
var DefaultTriggers = []Trigger{TriggerAccepted, TriggerDeclined, TriggerDischarged}

// ParseTriggers parses a comma-separated list of triggers ("" is none).
func ParseTriggers(s string) ([]Trigger, error) {
	var out []Trigger
	for f := range strings.SplitSeq(s, ",") {
		t := Trigger(strings.TrimSpace(f))
		if t == "" {
			continue
		}
		if !slices.Contains(AllTriggers, t) {
			return nil, fmt.Errorf("senddoc: unknown trigger %q (accepted, declined, plan-agreed, discharged)", t)
		}
		out = append(out, t)
	}
	return out, nil
}

// Reached returns the triggers a change reached: before is the referral
// and the plan's agreement time before the change, after the case record
// after it.
func Reached(before *linkbridge.Referral, beforePlanAgreed *time.Time, after *linkbridge.CaseRecord) []Trigger {
	ref := after.Referral
	var out []Trigger
	if before.AcceptedAt.IsZero() && !ref.AcceptedAt.IsZero() {
		out = append(out, TriggerAccepted)
	}
	if before.BusinessStatus != linkbridge.BusinessDeclined && ref.BusinessStatus == linkbridge.BusinessDeclined {
		out = append(out, TriggerDeclined)
	}
	if a := after.Plan.AgreedAt; a != nil && (beforePlanAgreed == nil || !beforePlanAgreed.Equal(*a)) {
		out = append(out, TriggerPlanAgreed)
	}
	if before.CompletedAt.IsZero() && !ref.CompletedAt.IsZero() && ref.BusinessStatus != linkbridge.BusinessDeclined {
		out = append(out, TriggerDischarged)
	}
	return out
}

// Patient is the person as the referrer's Patient resource names them: the
// details MESH automatic routing and the document need.
type Patient struct {
	NHSNumber string
	Family    string
	Given     string
	// BirthDate is YYYY-MM-DD.
	BirthDate string
	// Gender is the FHIR administrative gender ("" when unknown).
	Gender string
}

// Party is an organisation named by ODS code.
type Party struct {
	ODS  string
	Name string
}

// Input is what a document is rendered from.
type Input struct {
	Case    *linkbridge.CaseRecord
	Patient Patient
	Trigger Trigger
	// Service is the social prescribing service: the document's author and
	// custodian, and the message's sender.
	Service Party
	// Practice is the person's registered practice, the receiver.
	Practice Party
	// MessageID identifies the ITK3 message (MessageHeader.id and the
	// message Bundle's id), DocumentID the document (the document Bundle's
	// identifier and the Composition's identifier). Both are UUIDs.
	MessageID, DocumentID string
	// Replaces, when set, is the DocumentID of an earlier document this one
	// replaces (Composition.relatesTo replaces).
	Replaces string
	// Version is the document's version: 1, then one more per replacement.
	Version int
	// Now is when the document is created.
	Now time.Time
}

// Validate checks that the input names what the message needs.
func (in *Input) Validate() error {
	switch {
	case in.Case == nil || in.Case.Referral == nil:
		return fmt.Errorf("senddoc: no case record")
	case in.Patient.NHSNumber == "" || in.Patient.Family == "" || in.Patient.BirthDate == "":
		return fmt.Errorf("senddoc: the patient's NHS number, family name and birth date are needed for MESH routing")
	case in.Service.ODS == "" || in.Practice.ODS == "":
		return fmt.Errorf("senddoc: the service and the practice need ODS codes")
	case in.MessageID == "" || in.DocumentID == "":
		return fmt.Errorf("senddoc: message and document ids are needed")
	case !slices.Contains(AllTriggers, in.Trigger):
		return fmt.Errorf("senddoc: unknown trigger %q", in.Trigger)
	case in.Now.IsZero():
		return fmt.Errorf("senddoc: no creation time")
	}
	return nil
}

// freeText reports whether the consent lets free text reach the GP record.
func (in *Input) freeText() bool { return in.Case.Referral.Consent == linkbridge.ConsentFull }

// Title is the document's title.
const Title = "Social prescribing update"

// Closing returns the point that closed a referral's episode: declined,
// discharged (completed, failed or cancelled after acceptance), or ""
// while it is open.
func Closing(r *linkbridge.Referral) Trigger {
	switch {
	case r.BusinessStatus == linkbridge.BusinessDeclined:
		return TriggerDeclined
	case !r.CompletedAt.IsZero():
		return TriggerDischarged
	}
	return ""
}

// TriggerOf returns the trigger of a built message, read from its
// Composition's title ("" when it names none).
func TriggerOf(message []byte) Trigger {
	for t, title := range triggerTitle {
		if bytes.Contains(message, []byte(strconv.Quote(Title+": "+title))) {
			return t
		}
	}
	return ""
}

// triggerTitle is how each trigger reads on the document.
var triggerTitle = map[Trigger]string{
	TriggerAccepted:   "Referral accepted",
	TriggerDeclined:   "Referral declined",
	TriggerPlanAgreed: "Personalised care and support plan agreed",
	TriggerDischarged: "Discharged from social prescribing",
}

// The SNOMED CT codes GP systems file for the social prescribing episode
// (docs/domain.md#coding-the-episode) and the document type
// (docs/send-document.md#the-message).
const (
	SCTSystem = "http://snomed.info/sct"
	// SCTClinicalConsultationReport is the Composition.type of the
	// document.
	SCTClinicalConsultationReport = "371530004"
)

// line is one labelled row of the document.
type line struct{ label, value string }

// content is the document as the PDF and the narrative both show it: one
// place decides what consent allows.
type content struct {
	title    string
	header   []line
	sections []section
}

type section struct {
	title string
	rows  []line
	// code is the SNOMED code the section's entry carries, if any.
	code, display string
}

// render decides the document's content from the input.
func render(in *Input) content {
	ref := in.Case.Referral
	free := in.freeText()
	c := content{title: Title + ": " + triggerTitle[in.Trigger]}
	name := strings.TrimSpace(in.Patient.Given + " " + strings.ToUpper(in.Patient.Family))
	c.header = []line{
		{"Patient", name},
		{"NHS number", formatNHS(in.Patient.NHSNumber)},
		{"Date of birth", formatDate(in.Patient.BirthDate)},
		{"Registered practice", party(in.Practice)},
		{"From", party(in.Service)},
		{"Link worker", ref.LinkWorker.Name},
		{"Document date", in.Now.UTC().Format("2 January 2006 15:04 MST")},
	}
	status := []line{
		{"Status", statusText(ref)},
		{"Referral received", dateOf(ref.ReceivedAt)},
	}
	if !ref.AcceptedAt.IsZero() {
		status = append(status, line{"Accepted", dateOf(ref.AcceptedAt)})
	}
	if !ref.AgreedAt.IsZero() {
		status = append(status, line{"Agreed to take part", dateOf(ref.AgreedAt)})
	}
	if !ref.CompletedAt.IsZero() {
		status = append(status, line{"Episode ended", dateOf(ref.CompletedAt)})
	}
	if ref.DeclineReason != "" {
		status = append(status, line{"Decline reason", words(ref.DeclineReason)})
	}
	if ref.DischargeReason != "" {
		status = append(status, line{"Discharge reason", words(ref.DischargeReason)})
	}
	if free && ref.DischargeSummary != "" {
		status = append(status, line{"Summary", ref.DischargeSummary})
	}
	st := section{title: "Referral", rows: status}
	switch {
	case !ref.PersonDeclinedAt.IsZero():
		st.code, st.display = linkbridge.SCTSocialPrescribingDeclined, "Social prescribing declined"
	case !ref.AgreedAt.IsZero():
		st.code, st.display = linkbridge.SCTReferralToSocialPrescribing, "Referral to social prescribing service"
	}
	c.sections = append(c.sections, st)

	var contacts []line
	attended, dna := 0, 0
	for _, ct := range in.Case.Contacts {
		if ct.Withdrawn() {
			continue
		}
		if ct.Attended {
			attended++
		} else {
			dna++
		}
	}
	if attended+dna > 0 {
		contacts = append(contacts, line{"Contacts", fmt.Sprintf("%d attended, %d not attended", attended, dna)})
	}
	if len(contacts) > 0 {
		c.sections = append(c.sections, section{title: "Contacts", rows: contacts})
	}

	var plan []line
	p := in.Case.Plan
	if p.AgreedAt != nil {
		plan = append(plan, line{"Plan agreed", dateOf(*p.AgreedAt)})
	}
	if free && p.WhatMatters != "" {
		plan = append(plan, line{"What matters", p.WhatMatters})
	}
	for i, g := range p.Goals {
		if g.Status == linkbridge.GoalEnteredInError {
			continue
		}
		label := fmt.Sprintf("Goal %d", i+1)
		if free {
			plan = append(plan, line{label, g.Description + " (" + words(g.Status) + ")"})
		} else {
			plan = append(plan, line{label, words(g.Status)})
		}
	}
	for _, o := range p.OnwardReferrals {
		v := words(o.Status) + ", " + dateOf(o.SentAt)
		if free {
			v = o.Service + ": " + v
		}
		plan = append(plan, line{"Onward referral", v})
	}
	if len(plan) > 0 {
		c.sections = append(c.sections, section{title: "Plan and goals", rows: plan})
	}
	if ms := measureRows(in.Case.Measures); len(ms) > 0 {
		c.sections = append(c.sections, section{title: "Outcome measures", rows: ms})
	}
	if !free {
		c.sections = append(c.sections, section{title: "Consent", rows: []line{{"Shared", "codes and statuses only: the person has not agreed to share free text"}}})
	}
	return c
}

// measureRows lists each instrument's scores in time order with the change
// from the first to the last.
func measureRows(ms []*linkbridge.Measure) []line {
	by := map[linkbridge.Instrument][]*linkbridge.Measure{}
	var order []linkbridge.Instrument
	for _, m := range ms {
		if m.Withdrawn() {
			continue
		}
		if _, ok := by[m.Instrument]; !ok {
			order = append(order, m.Instrument)
		}
		by[m.Instrument] = append(by[m.Instrument], m)
	}
	var out []line
	for _, ins := range order {
		list := by[ins]
		slices.SortStableFunc(list, func(a, b *linkbridge.Measure) int { return a.TakenAt.Compare(b.TakenAt) })
		var parts []string
		for _, m := range list {
			parts = append(parts, fmt.Sprintf("%s %s (%s)", m.Timepoint, score(m), dateOf(m.TakenAt)))
		}
		v := strings.Join(parts, "; ")
		if len(list) > 1 && ins != linkbridge.ONS4 {
			// Scores carry two decimals (SWEMWBS metric scores): so does
			// their difference, without float noise (4.92, not
			// 4.920000000000002).
			d := math.Round((scoreValue(list[len(list)-1])-scoreValue(list[0]))*100) / 100
			v += "; change " + strconv.FormatFloat(d, 'f', -1, 64)
			if d > 0 {
				v = strings.Replace(v, "; change ", "; change +", 1)
			}
		}
		out = append(out, line{string(ins), v})
	}
	return out
}

func scoreValue(m *linkbridge.Measure) float64 {
	if m.Instrument == linkbridge.SWEMWBS && m.Metric != 0 {
		return m.Metric
	}
	return float64(m.Total)
}

func score(m *linkbridge.Measure) string {
	if m.Instrument == linkbridge.ONS4 {
		s := make([]string, len(m.Items))
		for i, v := range m.Items {
			s[i] = fmt.Sprint(v)
		}
		return strings.Join(s, "/")
	}
	return fmt.Sprintf("%g", scoreValue(m))
}

func statusText(r *linkbridge.Referral) string {
	if r.BusinessStatus != "" {
		return words(r.BusinessStatus)
	}
	return words(string(r.Status))
}

func party(p Party) string {
	if p.Name == "" {
		return p.ODS
	}
	return p.Name + " (" + p.ODS + ")"
}

// words turns a code like "goals-met" into "goals met".
func words(code string) string { return strings.ReplaceAll(code, "-", " ") }

func dateOf(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2 January 2006")
}

func formatDate(ymd string) string {
	t, err := time.Parse("2006-01-02", ymd)
	if err != nil {
		return ymd
	}
	return t.Format("2 January 2006")
}

func formatNHS(n string) string {
	if len(n) != 10 {
		return n
	}
	return n[:3] + " " + n[3:6] + " " + n[6:]
}
