package senddoc_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/senddoc"
)

var update = flag.Bool("update", false, "rewrite the golden files (and docs/send-document-sample.pdf)")

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// dischargedCase is a completed episode with a plan, contacts and
// measures.
func dischargedCase(consent linkbridge.ConsentLevel) *linkbridge.CaseRecord {
	agreed := at("2025-02-03T10:00:00Z")
	return &linkbridge.CaseRecord{
		Referral: &linkbridge.Referral{ID: "ref-1", TaskID: "task-1", PersonID: "p-1", Status: linkbridge.TaskStatus("completed"),
			BusinessStatus: linkbridge.BusinessDischarged, ServiceODS: "SPS001", ReferrerODS: "A81001",
			LinkWorker: linkbridge.LinkWorker{ID: "lw-1", Name: "Sam Link"}, Consent: consent,
			DischargeReason: "goals-met", DischargeSummary: "Joined the walking group; feels less isolated.",
			ReceivedAt: at("2025-01-10T09:00:00Z"), AcceptedAt: at("2025-01-12T09:00:00Z"),
			AgreedAt: at("2025-01-20T09:00:00Z"), CompletedAt: at("2025-04-01T12:00:00Z")},
		Person: &linkbridge.Person{ID: "p-1", NHSNumber: "9434765919", BirthDate: "1950-07-02", GPODS: "A81001"},
		Plan: linkbridge.Plan{WhatMatters: "Getting out of the house", AgreedAt: &agreed,
			Goals:           []linkbridge.Goal{{ID: "g1", Description: "Join a walking group", Status: linkbridge.GoalAchieved}},
			OnwardReferrals: []linkbridge.OnwardReferral{{ID: "o1", Service: "Citizens Advice", Status: "completed", SentAt: at("2025-02-10T09:00:00Z")}}},
		Contacts: []*linkbridge.Contact{{ID: "c1", At: at("2025-01-20T09:00:00Z"), Attended: true, Notes: "secret note"},
			{ID: "c2", At: at("2025-02-20T09:00:00Z"), Attended: false}},
		Measures: []*linkbridge.Measure{
			{ID: "m1", Instrument: linkbridge.WEMWBS, Timepoint: linkbridge.TimepointBaseline, Total: 38, TakenAt: at("2025-01-20T09:30:00Z")},
			{ID: "m2", Instrument: linkbridge.WEMWBS, Timepoint: linkbridge.TimepointFinal, Total: 47, TakenAt: at("2025-03-30T09:30:00Z")},
		},
	}
}

func input(consent linkbridge.ConsentLevel) *senddoc.Input {
	return &senddoc.Input{Case: dischargedCase(consent),
		Patient: senddoc.Patient{NHSNumber: "9434765919", Family: "Jones", Given: "Ada May", BirthDate: "1950-07-02", Gender: "female"},
		Trigger: senddoc.TriggerDischarged, Service: senddoc.Party{ODS: "SPS001", Name: "Northtown Social Prescribing"},
		Practice:  senddoc.Party{ODS: "A81001", Name: "Riverside Surgery"},
		MessageID: "3b7c64a4-6f1e-4c52-9d7b-0c1f5e0a0001", DocumentID: "9e0f5d1c-2b4a-4e77-8a31-5d6c7b8a0002",
		Version: 1, Now: at("2025-04-01T12:05:00Z")}
}

// TestBuildGolden: the message for a discharge, with full consent, is the
// golden file (any change to the message shows as a diff to review), parses
// with google/fhir's STU3 protos, and its Base64 attachment is the PDF.
func TestBuildGolden(t *testing.T) {
	in := input(linkbridge.ConsentFull)
	msg, err := senddoc.Build(in)
	if err != nil {
		t.Fatal(err)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, msg.Body, "", "  "); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "discharge-message.json")
	if *update {
		if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "docs", "send-document-sample.pdf"), msg.PDF, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Errorf("message differs from %s (run with -update and review the diff)", golden)
	}
	if _, err := senddoc.ParseSTU3(msg.Body); err != nil {
		t.Fatalf("message does not parse as STU3: %v", err)
	}
	b := fhirjson.ParseJSON(msg.Body)
	if got := b.Get(`entry.0.resource.resourceType`).String(); got != "MessageHeader" {
		t.Errorf("first entry is %s, want MessageHeader", got)
	}
	doc := b.Get(`entry.1.resource`)
	if got, want := b.Get(`entry.0.resource.focus.0.reference`).String(), doc.Get("fullUrl").String(); want != "" && got != want {
		t.Errorf("focus %s", got)
	}
	if doc.Get("type").String() != "document" || doc.Get("entry.0.resource.resourceType").String() != "Composition" {
		t.Fatalf("focus is not a document Bundle led by a Composition")
	}
	comp := doc.Get("entry.0.resource")
	for _, f := range []string{"custodian.reference", "subject.reference", "author.0.reference"} {
		if comp.Get(f).String() == "" {
			t.Errorf("Composition.%s missing", f)
		}
	}
	primary := comp.Get("section.0.entry.0.reference").String()
	var pdf string
	for _, e := range doc.Get("entry").Array() {
		if e.Get("fullUrl").String() == primary {
			pdf = e.Get("resource.content").String()
		}
	}
	raw, err := base64.StdEncoding.DecodeString(pdf)
	if err != nil || !bytes.Equal(raw, msg.PDF) || !bytes.HasPrefix(raw, []byte("%PDF-")) {
		t.Errorf("the first section's entry is not the Base64 PDF")
	}
	if !strings.Contains(string(msg.Body), "Joined the walking group") {
		t.Errorf("full consent: the summary is missing")
	}
}

// TestCodesOnlyNoFreeText: with codes-only consent neither the message nor
// the PDF carries free text (summary, what matters, goal descriptions,
// notes, onward service names).
func TestCodesOnlyNoFreeText(t *testing.T) {
	in := input(linkbridge.ConsentCodesOnly)
	msg, err := senddoc.Build(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"walking group", "Getting out of the house", "secret note", "Citizens Advice"} {
		if bytes.Contains(msg.Body, []byte(s)) {
			t.Errorf("codes-only message carries %q", s)
		}
		if bytes.Contains(msg.PDF, []byte(s)) {
			t.Errorf("codes-only PDF carries %q", s)
		}
	}
	if !bytes.Contains(msg.Body, []byte("goals met")) {
		t.Errorf("codes-only message lost the coded discharge reason")
	}
}

// TestReplaces: a replacement names the earlier document.
func TestReplaces(t *testing.T) {
	in := input(linkbridge.ConsentFull)
	in.Replaces = "11111111-2222-4333-8444-555555555555"
	msg, err := senddoc.Build(in)
	if err != nil {
		t.Fatal(err)
	}
	rt := fhirjson.ParseJSON(msg.Body).Get("entry.1.resource.entry.0.resource.relatesTo.0")
	if rt.Get("code").String() != "replaces" || rt.Get("targetIdentifier.value").String() != in.Replaces {
		t.Errorf("relatesTo = %s", rt.Raw)
	}
}

// TestReached: each trigger fires once, at its transition.
func TestReached(t *testing.T) {
	before := &linkbridge.Referral{}
	cr := dischargedCase(linkbridge.ConsentFull)
	got := senddoc.Reached(before, nil, cr)
	want := []senddoc.Trigger{senddoc.TriggerAccepted, senddoc.TriggerPlanAgreed, senddoc.TriggerDischarged}
	if len(got) != len(want) {
		t.Fatalf("Reached = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Reached = %v, want %v", got, want)
		}
	}
	same := *cr.Referral
	if got := senddoc.Reached(&same, cr.Plan.AgreedAt, cr); len(got) != 0 {
		t.Errorf("no change reached %v", got)
	}
}

// TestPDFReadable reads the document's PDF back with an independent
// reader, poppler's pdftotext: what the GP reads is there, in order, and
// with codes-only consent none of the free text is.
func TestPDFReadable(t *testing.T) {
	bin, err := exec.LookPath("pdftotext")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("pdftotext (poppler-utils) is not installed; .ci/run installs it")
		}
		t.Skip("pdftotext (poppler-utils) not installed")
	}
	text := func(consent linkbridge.ConsentLevel) string {
		msg, err := senddoc.Build(input(consent))
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "doc.pdf")
		if err := os.WriteFile(f, msg.PDF, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "-layout", f, "-").Output()
		if err != nil {
			t.Fatalf("pdftotext could not read the PDF: %v", err)
		}
		return strings.Join(strings.Fields(string(out)), " ")
	}
	full := text(linkbridge.ConsentFull)
	last := 0
	for _, want := range []string{"Social prescribing update: Discharged from social prescribing", "Ada May JONES", "943 476 5919",
		"Riverside Surgery", "Northtown Social Prescribing", "Sam Link", "goals met", "Joined the walking group; feels less isolated.",
		"Getting out of the house", "Join a walking group (achieved)", "WEMWBS", "change +9", "page 1 of 1"} {
		i := strings.Index(full[last:], want)
		if i < 0 {
			t.Errorf("the PDF's text lacks %q after position %d:\n%s", want, last, full)
			continue
		}
		last += i
	}
	codes := text(linkbridge.ConsentCodesOnly)
	for _, free := range []string{"Joined the walking group", "Getting out of the house", "secret note"} {
		if strings.Contains(codes, free) {
			t.Errorf("codes-only consent: the PDF shows %q:\n%s", free, codes)
		}
	}
	if !strings.Contains(codes, "943 476 5919") {
		t.Errorf("codes-only PDF lacks the NHS number:\n%s", codes)
	}
}

// TestXML: a message rendered as FHIR STU3 XML reads back (Validate) as
// the same document as its JSON, and so does a response; XML that is not
// FHIR STU3 is refused as unreadable (10009).
func TestXML(t *testing.T) {
	msg, err := senddoc.Build(input(linkbridge.ConsentFull))
	if err != nil {
		t.Fatal(err)
	}
	x, err := senddoc.Encode(msg.Body, senddoc.FormatXML)
	if err != nil {
		t.Fatal(err)
	}
	if senddoc.FormatOf(x) != senddoc.FormatXML || !bytes.Contains(x, []byte(`<Bundle xmlns="http://hl7.org/fhir">`)) {
		t.Fatalf("not FHIR XML:\n%.300s", x)
	}
	fromJSON, err := senddoc.Validate(msg.Body)
	if err != nil {
		t.Fatal(err)
	}
	fromXML, err := senddoc.Validate(x)
	if err != nil {
		t.Fatalf("the XML message is refused: %v", err)
	}
	if fromXML.MessageID != fromJSON.MessageID || fromXML.DocumentID != fromJSON.DocumentID || fromXML.Title != fromJSON.Title ||
		!bytes.Equal(fromXML.PDF, fromJSON.PDF) || fromXML.NHSNumber != fromJSON.NHSNumber {
		t.Errorf("XML reads as %+v, JSON as %+v", fromXML, fromJSON)
	}
	again, err := senddoc.Encode(msg.Body, senddoc.FormatXML)
	if err != nil || !bytes.Equal(again, x) {
		t.Error("XML rendering is not deterministic: a resumed chunked upload would change body")
	}
	resp, err := senddoc.BuildResponse(senddoc.Response{ForMessageID: msg.MessageID, Business: true, OK: true, Code: senddoc.CodeSuccess},
		"5d1e0c2a-0000-4000-8000-000000000001", senddoc.Party{ODS: "A81001"}, senddoc.Party{ODS: "SPS001"}, at("2025-04-01T12:06:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	rx, err := senddoc.Encode(resp, senddoc.FormatXML)
	if err != nil {
		t.Fatal(err)
	}
	r, err := senddoc.ParseResponse(rx)
	if err != nil || r.ForMessageID != msg.MessageID || !r.Business || !r.OK {
		t.Errorf("XML response reads as %+v, %v", r, err)
	}
	var inv *senddoc.Invalid
	if _, err := senddoc.Validate([]byte(`<Bundle xmlns="http://hl7.org/fhir"><nonsense/></Bundle>`)); !errors.As(err, &inv) || inv.Code != senddoc.CodeUnreadable {
		t.Errorf("unreadable XML: %v, want code %s", err, senddoc.CodeUnreadable)
	}
}
