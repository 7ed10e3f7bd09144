package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/httpapi"
	"github.com/linkbridge/linkbridge/fhirmap"
)

// The tests in this file drive whole referrals through the link workers'
// API (/sp/v1) over HTTP and, after every step, read both views of the
// case: the store's (GET /sp/v1/referrals/{id}) and the GP record's (the
// FHIR resources at /fhir). Every FHIR body is decoded with fhirjson and
// checked by the independent validator (ts.do); every /sp/v1 exchange is
// checked against the OpenAPI document (ts.sp, openapi_test.go).

// spResponse is one /sp/v1 answer.
type spResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// spBase is the root of the link workers' API on ts.
func (ts *testServer) spBase() string { return strings.TrimSuffix(ts.URL, "/fhir") + "/sp/v1" }

// sp sends a request to /sp/v1 (path relative to it). body is nil, raw
// bytes, or a value sent as JSON. The exchange is checked against the
// OpenAPI document: every response, and the request of every 2xx answer
// (error tests send invalid requests on purpose).
func (ts *testServer) sp(method, path string, body any, h hdr) *spResponse {
	ts.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	default:
		raw = mustJSON(ts.t, b)
	}
	var rd io.Reader
	if raw != nil {
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, ts.spBase()+path, rd)
	if err != nil {
		ts.t.Fatalf("new request: %v", err)
	}
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range h {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	out := &spResponse{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		ts.t.Errorf("%s %s: Content-Type = %q, want application/json", method, path, ct)
	}
	ts.checkOpenAPI(req, raw, out)
	return out
}

// wantSP fails the test unless r has the status.
func wantSP(t *testing.T, r *spResponse, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body: %s", r.Status, status, r.Body)
	}
}

// wantSPError checks an /sp/v1 error: status, code, and that the message
// contains every string of msg.
func wantSPError(t *testing.T, r *spResponse, status int, code string, msg ...string) spErrorBody {
	t.Helper()
	wantSP(t, r, status)
	var e spErrorBody
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, r.Body)
	}
	if e.Code != code {
		t.Errorf("error code = %q, want %q; body: %s", e.Code, code, r.Body)
	}
	for _, m := range msg {
		if !strings.Contains(e.Message, m) {
			t.Errorf("error message %q does not contain %q", e.Message, m)
		}
	}
	return e
}

type spErrorBody struct {
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Fields  []string `json:"fields"`
}

func decodeCase(t *testing.T, r *spResponse) *httpapi.CaseView {
	t.Helper()
	var cv httpapi.CaseView
	if err := json.Unmarshal(r.Body, &cv); err != nil {
		t.Fatalf("case view does not decode: %v: %s", err, r.Body)
	}
	if cv.Referral == nil {
		t.Fatalf("case view has no referral: %s", r.Body)
	}
	if got, want := r.Header.Get("ETag"), fmt.Sprintf(`W/"%d"`, cv.Referral.Version); got != want {
		t.Errorf("ETag = %q, want %q (the referral version)", got, want)
	}
	return &cv
}

// spCase is one referral driven through /sp/v1, with the ids of its FHIR
// resources and the version the next write expects.
type spCase struct {
	t                    *testing.T
	ts                   *testServer
	ID, TaskID, PersonID string
	Version              int
	// taskVersion is the Task version the last check saw.
	taskVersion int
}

// intake posts a referral transaction and returns the new case.
func (ts *testServer) intake(t *testing.T, body []byte) *spCase {
	t.Helper()
	b := bundle(t, ts.post("", body, nil), "transaction-response")
	c := &spCase{t: t, ts: ts, Version: 1, taskVersion: 1}
	for _, e := range b.GetEntry() {
		typ, id, _ := parseLocation(t, e.GetResponse().GetLocation().GetValue())
		switch typ {
		case "ServiceRequest":
			c.ID = id
		case "Task":
			c.TaskID = id
		case "Patient":
			c.PersonID = id
		}
	}
	if c.ID == "" || c.TaskID == "" || c.PersonID == "" {
		t.Fatalf("transaction-response lacks a Patient, ServiceRequest or Task: %v", b.GetEntry())
	}
	return c
}

// ifMatch is the If-Match header for the case's current version.
func (c *spCase) ifMatch() hdr { return hdr{"If-Match": fmt.Sprintf(`W/"%d"`, c.Version)} }

// write sends a change with If-Match set to the current version and
// returns the changed case; the case's version moves on.
func (c *spCase) write(method, sub string, body any, status int) *httpapi.CaseView {
	c.t.Helper()
	r := c.ts.sp(method, "/referrals/"+c.ID+sub, body, c.ifMatch())
	wantSP(c.t, r, status)
	cv := decodeCase(c.t, r)
	if cv.Referral.Version != c.Version+1 {
		c.t.Errorf("%s %s: version = %d, want %d (every change is versioned)", method, sub, cv.Referral.Version, c.Version+1)
	}
	c.Version = cv.Referral.Version
	return cv
}

func (c *spCase) action(cmd linkbridge.LifecycleCommand) *httpapi.CaseView {
	c.t.Helper()
	return c.write(http.MethodPost, "/actions", cmd, http.StatusOK)
}

func (c *spCase) get() *httpapi.CaseView {
	c.t.Helper()
	r := c.ts.sp(http.MethodGet, "/referrals/"+c.ID, nil, nil)
	wantSP(c.t, r, http.StatusOK)
	return decodeCase(c.t, r)
}

// fhirDoc reads a FHIR resource (validated by ts.do) as generic JSON.
func (ts *testServer) fhirDoc(path string) jsonDoc {
	ts.t.Helper()
	r := ts.get(path)
	wantStatus(ts.t, r, http.StatusOK)
	return mustParseJSON(ts.t, r.Body)
}

// searchDocs runs a FHIR search and returns the matches as generic JSON.
func (ts *testServer) searchDocs(typ string, kv ...string) []jsonDoc {
	ts.t.Helper()
	r := ts.get("/" + typ + "?" + vals(append(kv, "_count", "200")...).Encode())
	bundle(ts.t, r, "searchset")
	var out []jsonDoc
	entries, _ := mustParseJSON(ts.t, r.Body)["entry"].([]any)
	for _, e := range entries {
		e := e.(jsonDoc)
		if s, _ := e["search"].(jsonDoc); s != nil && s["mode"] != "match" {
			continue
		}
		out = append(out, e["resource"].(jsonDoc))
	}
	return out
}

// at walks a generic JSON document: string keys index objects, ints index
// arrays. It returns nil when the path is absent.
func at(d any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := d.(jsonDoc)
			if !ok {
				return nil
			}
			d = m[k]
		case int:
			a, ok := d.([]any)
			if !ok || k >= len(a) {
				return nil
			}
			d = a[k]
		}
	}
	return d
}

func str(d any, path ...any) string { s, _ := at(d, path...).(string); return s }

func num(d any, path ...any) float64 { f, _ := at(d, path...).(float64); return f }

func refsOf(d any, path ...any) []string {
	var out []string
	l, _ := at(d, path...).([]any)
	for _, x := range l {
		out = append(out, str(x, "reference"))
	}
	return out
}

// stage is what a case should look like after one step.
type stage struct {
	name     string
	status   linkbridge.TaskStatus
	business string
	// taskChanged says whether the step changed the referral Task (a new
	// version of it); taskNew, when set, is the number of new Task versions
	// since the last check (for tests that check every few steps).
	taskChanged bool
	taskNew     int
	// measures counts the stored measures; carePlan (CarePlan.status, ""
	// for none), procedure (acceptance entry present) and declined
	// (decline entry present) describe the FHIR view. Under consent none
	// the FHIR view holds no Observation, Encounter or Goal.
	measures  int
	carePlan  string
	procedure bool
	declined  bool
}

// check reads the case through /sp/v1 and /fhir and compares both with st.
func (c *spCase) check(st stage) *httpapi.CaseView {
	c.t.Helper()
	t, ts := c.t, c.ts
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%s: %s", st.name, fmt.Sprintf(format, args...))
	}

	// The store's view.
	cv := c.get()
	rf := cv.Referral
	if rf.Status != st.status || rf.BusinessStatus != st.business || rf.Version != c.Version {
		fail("referral status/businessStatus/version = %s/%q/%d, want %s/%q/%d", rf.Status, rf.BusinessStatus, rf.Version, st.status, st.business, c.Version)
	}
	if len(cv.History) != c.Version {
		fail("history has %d events, want %d (one per version)", len(cv.History), c.Version)
	}
	for i, ev := range cv.History {
		if ev.Version != i+1 || ev.ReferralID != c.ID {
			fail("history[%d] = version %d of %s, want version %d of %s", i, ev.Version, ev.ReferralID, i+1, c.ID)
		}
	}
	if n := len(cv.History); n > 0 {
		if cv.History[0].Action != "received" {
			fail("history[0].action = %q, want received", cv.History[0].Action)
		}
		if cv.History[n-1].Status != st.status {
			fail("last history status = %s, want %s", cv.History[n-1].Status, st.status)
		}
	}
	if cv.Person == nil || cv.Person.ID != c.PersonID || cv.Person.NHSNumber != nhsReferralTxn {
		fail("person = %+v, want id %s and NHS number %s", cv.Person, c.PersonID, nhsReferralTxn)
	}
	if rf.ReferrerODS != "A81001" || rf.ServiceODS != "Y02662" || rf.TaskID != c.TaskID || rf.PersonID != c.PersonID {
		fail("referral referrer/service/task/person = %s/%s/%s/%s", rf.ReferrerODS, rf.ServiceODS, rf.TaskID, rf.PersonID)
	}
	if len(rf.Reasons) != 1 || rf.Reasons[0].Code != "267076002" {
		fail("referral reasons = %+v, want SNOMED 267076002", rf.Reasons)
	}

	// The FHIR view. Each step finds it by searching (every search body
	// is validated); reads by id and _history are checked once, at the end
	// of a journey (checkReads), to keep the test fast under -race.
	wantOutput := []string{}
	byType := map[string][]string{}
	for _, ref := range cv.FHIR {
		typ, _, _ := strings.Cut(ref, "/")
		byType[typ] = append(byType[typ], ref)
		switch typ {
		case "Task", "Goal", "ServiceRequest":
		default:
			wantOutput = append(wantOutput, ref)
		}
	}
	if !slices.Contains(cv.FHIR, "Task/"+c.TaskID) || !slices.Contains(cv.FHIR, "ServiceRequest/"+c.ID) {
		fail("fhir list %q lacks the referral's Task or ServiceRequest", cv.FHIR)
	}

	// The Task: status, businessStatus, output and a new version per change.
	task := ts.fhirDoc("/Task/" + c.TaskID)
	if got := str(task, "status"); got != string(st.status) {
		fail("Task.status = %q, want %q", got, st.status)
	}
	if got := str(task, "businessStatus", "coding", 0, "code"); got != st.business {
		fail("Task.businessStatus = %q, want %q", got, st.business)
	}
	if str(task, "lastModified") == "" {
		fail("Task.lastModified is missing")
	}
	var gotOutput []string
	outs, _ := task["output"].([]any)
	for _, o := range outs {
		gotOutput = append(gotOutput, str(o, "valueReference", "reference"))
	}
	slices.Sort(gotOutput)
	slices.Sort(wantOutput)
	if !slices.Equal(gotOutput, wantOutput) {
		fail("Task.output = %q, want %q", gotOutput, wantOutput)
	}
	if rf.LinkWorker.ID != "" {
		if got := str(task, "owner", "identifier", "value"); got != rf.LinkWorker.ID {
			fail("Task.owner = %q, want link worker %q", got, rf.LinkWorker.ID)
		}
	}
	wantTaskVersion := c.taskVersion
	switch {
	case st.taskNew > 0:
		wantTaskVersion += st.taskNew
	case st.taskChanged:
		wantTaskVersion++
	}
	tv, _ := strconv.Atoi(str(task, "meta", "versionId"))
	if tv != wantTaskVersion {
		fail("Task version = %d, want %d (changed: %v)", tv, wantTaskVersion, st.taskChanged)
	}
	c.taskVersion = tv

	// Chained search by NHS number finds the Task with its status.
	byNHS := false
	for _, d := range ts.searchDocs("Task", "patient.identifier", linkbridge.NHSNumberSystem+"|"+nhsReferralTxn) {
		if d["id"] == c.TaskID {
			byNHS = true
			if str(d, "status") != string(st.status) {
				fail("Task by NHS number has status %q, want %q", str(d, "status"), st.status)
			}
		}
	}
	if !byNHS {
		fail("Task?patient.identifier=...|%s does not find Task/%s", nhsReferralTxn, c.TaskID)
	}

	patient := "Patient/" + c.PersonID
	shared := rf.Consent != linkbridge.ConsentNone
	// What the searches by patient find is exactly the case's FHIR list.
	found := []string{"Task/" + c.TaskID}
	seen := func(docs []jsonDoc) []jsonDoc {
		for _, d := range docs {
			found = append(found, str(d, "resourceType")+"/"+str(d, "id"))
		}
		return docs
	}
	defer func() {
		t.Helper()
		want := slices.Clone(cv.FHIR)
		slices.Sort(want)
		slices.Sort(found)
		if !slices.Equal(found, want) {
			fail("searches by patient find %q, want the case's FHIR list %q", found, want)
		}
	}()
	seen(ts.searchDocs("ServiceRequest", "patient", patient))
	// Observations: one per measure, one per contact not attended (the
	// coded DNA entry), plus the decline entry.
	obs := seen(ts.searchDocs("Observation", "patient", patient))
	wantObs := st.measures
	for _, ct := range cv.Contacts {
		if !ct.Attended {
			wantObs++
		}
	}
	if st.declined {
		wantObs++
	}
	if !shared {
		wantObs = 0
	}
	if len(obs) != wantObs || len(byType["Observation"]) != wantObs {
		fail("Observation?patient has %d, fhir list %d, want %d", len(obs), len(byType["Observation"]), wantObs)
	}
	if len(cv.Measures) != st.measures {
		fail("case has %d measures, want %d", len(cv.Measures), st.measures)
	}

	// Encounters: one per contact, length = minutes for attended ones.
	encs := seen(ts.searchDocs("Encounter", "patient", patient))
	if wantEncs := len(cv.Contacts); len(encs) != wantEncs && shared || len(encs) != 0 && !shared {
		fail("Encounter?patient has %d, want %d (one per contact, consent %q)", len(encs), wantEncs, rf.Consent)
	}
	for _, e := range encs {
		var ct *linkbridge.Contact
		for _, x := range cv.Contacts {
			if x.ID == e["id"] {
				ct = x
			}
		}
		if ct == nil {
			fail("Encounter/%s matches no contact", e["id"])
			continue
		}
		switch {
		case ct.Attended && (str(e, "status") != "finished" || num(e, "length", "value") != float64(ct.Minutes) || str(e, "length", "code") != "min"):
			fail("Encounter/%s status %q length %v, want finished and %d min", e["id"], str(e, "status"), at(e, "length"), ct.Minutes)
		case !ct.Attended && (str(e, "status") != "cancelled" || at(e, "length") != nil):
			fail("Encounter/%s of a DNA has status %q length %v, want cancelled and no length", e["id"], str(e, "status"), at(e, "length"))
		}
		if got := str(e, "period", "start"); got != ct.At.UTC().Format(time.RFC3339) {
			fail("Encounter/%s period.start = %q, want %s", e["id"], got, ct.At.UTC().Format(time.RFC3339))
		}
	}

	// CarePlan and Goals.
	cps := seen(ts.searchDocs("CarePlan", "patient", patient))
	switch {
	case st.carePlan == "" && len(cps) != 0:
		fail("CarePlan?patient has %d, want none", len(cps))
	case st.carePlan != "" && len(cps) != 1:
		fail("CarePlan?patient has %d, want 1", len(cps))
	case st.carePlan != "":
		if got := str(cps[0], "status"); got != st.carePlan {
			fail("CarePlan.status = %q, want %q", got, st.carePlan)
		}
		if got := len(refsOf(cps[0], "goal")); got != len(cv.Plan.Goals) {
			fail("CarePlan.goal has %d, want %d", got, len(cv.Plan.Goals))
		}
	}
	goals := seen(ts.searchDocs("Goal", "patient", patient))
	wantGoals := len(cv.Plan.Goals)
	if !shared {
		wantGoals = 0
	}
	if len(goals) != wantGoals || len(byType["Goal"]) != wantGoals {
		fail("Goal?patient has %d, fhir list %d, want %d", len(goals), len(byType["Goal"]), wantGoals)
	}

	// The coded acceptance entry.
	procs := seen(ts.searchDocs("Procedure", "patient", patient))
	switch {
	case !st.procedure && len(procs) != 0:
		fail("Procedure?patient has %d, want none", len(procs))
	case st.procedure && (len(procs) != 1 || str(procs[0], "code", "coding", 0, "code") != linkbridge.SCTReferralToSocialPrescribing):
		fail("Procedure?patient = %v, want one SNOMED %s", procs, linkbridge.SCTReferralToSocialPrescribing)
	}
	return cv
}

// checkReads reads every resource of the case's FHIR view by id, checks
// that its _history has as many versions as its meta.versionId says and
// that the newest history entry is the current version.
func (c *spCase) checkReads(cv *httpapi.CaseView) {
	c.t.Helper()
	for _, ref := range cv.FHIR {
		d := c.ts.fhirDoc("/" + ref)
		v, _ := strconv.Atoi(str(d, "meta", "versionId"))
		h := c.ts.fhirDoc("/" + ref + "/_history")
		if int(num(h, "total")) != v || str(h, "entry", 0, "resource", "meta", "versionId") != strconv.Itoa(v) {
			c.t.Errorf("%s is version %d; its _history has %v versions, newest %q", ref, v, h["total"], str(h, "entry", 0, "resource", "meta", "versionId"))
		}
	}
}

// historyVersions returns the number of versions of a FHIR resource.
func (ts *testServer) historyVersions(ref string) int {
	ts.t.Helper()
	return int(num(ts.fhirDoc("/"+ref+"/_history"), "total"))
}

// journeyContacts are six contacts, the second not attended.
var journeyContacts = []linkbridge.Contact{
	{At: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), Mode: linkbridge.ContactFaceToFace, Minutes: 60, Attended: true, Notes: "First meeting: talked about the allotment"},
	{At: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC), Mode: linkbridge.ContactPhone, Attended: false, Notes: "No answer twice"},
	{At: time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC), Mode: linkbridge.ContactPhone, Minutes: 30, Attended: true, Notes: "Rearranged after missed call"},
	{At: time.Date(2026, 12, 8, 11, 0, 0, 0, time.UTC), Mode: linkbridge.ContactVideo, Minutes: 45, Attended: true, Notes: "Looked at walking groups together"},
	{At: time.Date(2026, 12, 15, 15, 30, 0, 0, time.UTC), Mode: linkbridge.ContactHomeVisit, Minutes: 50, Attended: true, Notes: "Home visit, daughter present"},
	{At: time.Date(2026, 12, 22, 9, 0, 0, 0, time.UTC), Mode: linkbridge.ContactGroup, Minutes: 90, Attended: true, Notes: "Came along to the walking group"},
}

// journeyPlan has two goals, an action, an onward referral and a signpost.
func journeyPlan() linkbridge.Plan {
	return linkbridge.Plan{
		WhatMatters:  "Getting back to the allotment with my neighbour",
		Needs:        []linkbridge.Need{{Code: &linkbridge.Coding{System: linkbridge.SNOMEDSystem, Code: "267076002", Display: "Feeling lonely"}}, {Text: "Struggles with the stairs"}},
		Risks:        []string{"Lives alone since bereavement"},
		Safeguarding: false,
		Goals: []linkbridge.Goal{
			{Description: "Join the Tuesday walking group", Importance: 8, Confidence: 6, Status: linkbridge.GoalActive},
			{Description: "Meet my old colleague for coffee every week", Importance: 9, Confidence: 4, Status: linkbridge.GoalActive},
		},
		Actions:         []linkbridge.PlanAction{{Description: "Ring the walking group leader about Tuesday", Who: "person", Due: "2026-12-05", Status: "not-started"}},
		OnwardReferrals: []linkbridge.OnwardReferral{{Service: "Age UK Befriending", OrganisationODS: "x9a3b", Reason: "Weekly befriending visits wanted", Status: "sent"}},
		Signposts:       []linkbridge.Signpost{{To: "Citizens Advice Bureau", Reason: "Pension credit query"}},
		ReviewDate:      "2027-01-15",
	}
}

// measureIn is the documented request body (MeasureInput) of a measure.
func measureIn(m linkbridge.Measure) jsonDoc {
	return jsonDoc{"instrument": m.Instrument, "timepoint": m.Timepoint, "items": m.Items, "takenAt": m.TakenAt}
}

// contactIn is the documented request body (ContactInput) of a contact.
func contactIn(c linkbridge.Contact) jsonDoc {
	d := jsonDoc{"at": c.At, "mode": c.Mode, "minutes": c.Minutes, "attended": c.Attended}
	if c.Notes != "" {
		d["notes"] = c.Notes
	}
	return d
}

func swemwbs(tp linkbridge.Timepoint, items []int, taken time.Time) jsonDoc {
	return measureIn(linkbridge.Measure{Instrument: linkbridge.SWEMWBS, Timepoint: tp, Items: items, TakenAt: taken})
}

// TestJourney takes one referral from the GP's transaction to discharge
// and checks the store view and the FHIR view after every step.
func TestJourney(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.intake(t, mustRead(t, fixReferralTxn))
	cv := c.check(stage{name: "received", status: linkbridge.TaskRequested})
	if len(cv.FHIR) != 2 {
		t.Errorf("a new referral shows %q at /fhir, want only its ServiceRequest and Task", cv.FHIR)
	}

	// The case names the person as the referrer's Patient does, so the
	// link worker can reach them.
	if cv0 := c.get(); cv0.Contact == nil || cv0.Contact.Name != "Alex XXTESTPATIENT-SOCPRESC" {
		t.Errorf("case view contact = %+v, want the Patient's official name", cv0.Contact)
	}

	// The service finds it in its inbox.
	page := ts.inbox(t, "service=y02662")
	if page.Total != 1 || len(page.Items) != 1 || page.Items[0].ID != c.ID || page.Items[0].Status != linkbridge.TaskRequested {
		t.Fatalf("inbox of Y02662 = %+v, want the new referral", page)
	}

	// The person agrees to share everything with the GP record: no FHIR
	// resource changes yet (nothing has happened to share).
	ts.Clock.Set(time.Date(2026, 11, 20, 11, 0, 0, 0, time.UTC))
	cv = c.write(http.MethodPut, "/consent", httpapi.ConsentRequest{Consent: linkbridge.ConsentFull}, http.StatusOK)
	if cv.Referral.Consent != linkbridge.ConsentFull {
		t.Errorf("consent = %q, want full", cv.Referral.Consent)
	}
	c.check(stage{name: "consent", status: linkbridge.TaskRequested})

	// Accept, assigning the link worker.
	ts.Clock.Set(time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC))
	lw := linkbridge.LinkWorker{ID: "lw-0042", Name: "Sam Okafor"}
	c.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: &lw})
	// The service's acceptance is not yet the person's: no referral code
	// in the GP record until the person agrees (the first attended
	// contact here; docs/domain.md#coding-the-episode).
	cv = c.check(stage{name: "accept", status: linkbridge.TaskAccepted, business: linkbridge.BusinessAccepted, taskChanged: true, carePlan: "active"})
	if cv.Referral.LinkWorker != lw || !cv.Referral.AcceptedAt.Equal(ts.Clock.Now()) || !cv.Referral.AgreedAt.IsZero() {
		t.Errorf("accepted referral has link worker %+v accepted %v agreed %v, want %+v at %v, not agreed", cv.Referral.LinkWorker, cv.Referral.AcceptedAt, cv.Referral.AgreedAt, lw, ts.Clock.Now())
	}
	task := ts.fhirDoc("/Task/" + c.TaskID)
	if str(task, "executionPeriod", "start") != "2026-11-21T09:00:00Z" || str(task, "owner", "display") != lw.Name {
		t.Errorf("accepted Task executionPeriod/owner = %v/%v", at(task, "executionPeriod"), at(task, "owner"))
	}
	if got := str(task, "lastModified"); !strings.HasPrefix(got, "2026-11-21T09:00:00") {
		t.Errorf("Task.lastModified = %q, want the acceptance time", got)
	}
	if p := ts.inbox(t, "linkWorker=lw-0042&status=accepted"); p.Total != 1 {
		t.Errorf("inbox for lw-0042, accepted = %d referrals, want 1", p.Total)
	}

	// Six contacts, one not attended. The first attended contact starts
	// the work.
	for i, ct := range journeyContacts {
		ts.Clock.Set(ct.At.Add(2 * time.Hour))
		cv = c.write(http.MethodPost, "/contacts", contactIn(ct), http.StatusCreated)
		if len(cv.Contacts) != i+1 || cv.Contacts[i].ID == "" || cv.Contacts[i].Notes != ct.Notes || cv.Contacts[i].Attended != ct.Attended {
			t.Fatalf("contact %d: case contacts = %+v", i, cv.Contacts)
		}
		c.check(stage{name: fmt.Sprintf("contact %d", i+1), status: linkbridge.TaskInProgress, business: linkbridge.BusinessFirstContactMade,
			taskChanged: true, carePlan: "active", procedure: true})
		if i == 0 {
			proc := ts.fhirDoc("/Procedure/" + fhirmap.AcceptanceID(c.ID))
			if str(proc, "performedDateTime") != "2026-11-23T10:00:00Z" || str(proc, "performer", 0, "actor", "identifier", "value") != lw.ID {
				t.Errorf("referral Procedure = %v, want performed at the first attended contact by %s", proc, lw.ID)
			}
		}
	}

	// The plan: two goals, an action, an onward referral, a signpost.
	ts.Clock.Set(time.Date(2026, 12, 22, 12, 0, 0, 0, time.UTC))
	plan := journeyPlan()
	cv = c.write(http.MethodPut, "/plan", plan, http.StatusOK)
	c.check(stage{name: "plan", status: linkbridge.TaskInProgress, business: linkbridge.BusinessPlanAgreed, taskChanged: true, carePlan: "active", procedure: true})
	if cv.Plan.AgreedAt == nil || len(cv.Plan.Goals) != 2 || cv.Plan.Goals[0].ID == "" || cv.Plan.Goals[1].ID == "" ||
		len(cv.Plan.OnwardReferrals) != 1 || cv.Plan.OnwardReferrals[0].OrganisationODS != "X9A3B" || cv.Plan.OnwardReferrals[0].SentAt.IsZero() ||
		cv.Plan.WhatMatters != plan.WhatMatters || len(cv.Plan.Risks) != 1 || len(cv.Plan.Needs) != 2 || cv.Plan.ReviewDate != plan.ReviewDate {
		t.Errorf("stored plan = %+v", cv.Plan)
	}
	cp := ts.fhirDoc("/CarePlan/" + fhirmap.CarePlanID(c.ID))
	if got := str(cp, "description"); !strings.Contains(got, plan.WhatMatters) {
		t.Errorf("CarePlan.description = %q, want what matters (full consent)", got)
	}
	if acts, _ := cp["activity"].([]any); len(acts) != 4 {
		t.Errorf("CarePlan.activity has %d, want 4 (action, onward referral, signpost, review)", len(acts))
	}
	if got := str(cp, "activity", 0, "detail", "scheduledPeriod", "start"); got != plan.ReviewDate {
		t.Errorf("CarePlan review activity starts %q, want the review date %s", got, plan.ReviewDate)
	}
	if notes, _ := cp["note"].([]any); len(notes) != 2 || !strings.Contains(str(cp, "note", 1, "text"), plan.Risks[0]) {
		t.Errorf("CarePlan.note = %v, want needs and risks (full consent)", cp["note"])
	}
	for i, g := range cv.Plan.Goals {
		gd := ts.fhirDoc("/Goal/" + g.ID)
		if str(gd, "description", "text") != plan.Goals[i].Description || str(gd, "lifecycleStatus") != "active" {
			t.Errorf("Goal/%s = %v, want %q active", g.ID, gd, plan.Goals[i].Description)
		}
		if num(gd, "extension", 0, "valueInteger") != float64(g.Importance) || num(gd, "extension", 1, "valueInteger") != float64(g.Confidence) {
			t.Errorf("Goal/%s importance/confidence extensions = %v", g.ID, gd["extension"])
		}
	}
	onward := ts.fhirDoc("/ServiceRequest/" + cv.Plan.OnwardReferrals[0].ID)
	if str(onward, "status") != "active" || str(onward, "performer", 0, "identifier", "value") != "X9A3B" ||
		str(onward, "basedOn", 0, "reference") != "ServiceRequest/"+c.ID || str(onward, "reasonCode", 0, "text") != plan.OnwardReferrals[0].Reason {
		t.Errorf("onward ServiceRequest = %v", onward)
	}

	// Baseline and final SWEMWBS.
	ts.Clock.Set(time.Date(2026, 12, 22, 13, 0, 0, 0, time.UTC))
	c.write(http.MethodPost, "/measures", swemwbs(linkbridge.TimepointBaseline, []int{2, 2, 3, 2, 2, 3, 2}, time.Date(2026, 11, 23, 10, 30, 0, 0, time.UTC)), http.StatusCreated)
	c.check(stage{name: "baseline", status: linkbridge.TaskInProgress, business: linkbridge.BusinessPlanAgreed, taskChanged: true, measures: 1, carePlan: "active", procedure: true})
	ts.Clock.Set(time.Date(2027, 2, 1, 13, 0, 0, 0, time.UTC))
	cv = c.write(http.MethodPost, "/measures", swemwbs(linkbridge.TimepointFinal, []int{4, 4, 3, 4, 4, 3, 4}, time.Date(2027, 2, 1, 10, 0, 0, 0, time.UTC)), http.StatusCreated)
	c.check(stage{name: "final", status: linkbridge.TaskInProgress, business: linkbridge.BusinessPlanAgreed, taskChanged: true, measures: 2, carePlan: "active", procedure: true})
	for i, want := range []struct {
		tp     string
		raw    int
		metric string
		change string // the change of the metric score from baseline, "" for none
	}{{"baseline", 16, "16.36", ""}, {"final", 26, "23.21", "6.85"}} {
		m := cv.Measures[i]
		if string(m.Timepoint) != want.tp || m.Total != want.raw || fmt.Sprintf("%.2f", m.Metric) != want.metric {
			t.Errorf("measure %d = %s raw %d metric %v, want %s %d %s", i, m.Timepoint, m.Total, m.Metric, want.tp, want.raw, want.metric)
		}
		switch ch := m.ChangeFromBaseline; {
		case want.change == "" && ch != nil:
			t.Errorf("measure %d has a change from baseline %+v, want none", i, ch)
		case want.change != "" && (ch == nil || ch.Score == nil || fmt.Sprintf("%.2f", *ch.Score) != want.change || ch.BaselineID != cv.Measures[0].ID ||
			!slices.Equal(ch.Items, []int{2, 2, 0, 2, 2, 0, 2})):
			t.Errorf("measure %d change from baseline = %+v, want %s from %s", i, ch, want.change, cv.Measures[0].ID)
		}
		r := ts.get("/Observation/" + m.ID)
		wantStatus(t, r, http.StatusOK)
		o := mustParseJSON(t, r.Body)
		if str(o, "code", "coding", 0, "code") != fhirmap.SCTSWEMWBS || str(o, "code", "coding", 0, "system") != linkbridge.SNOMEDSystem {
			t.Errorf("Observation/%s code = %v, want SNOMED %s", m.ID, o["code"], fhirmap.SCTSWEMWBS)
		}
		// The metric score is the value a GP system shows; the raw score
		// and the items are coded components.
		if str(o, "valueQuantity", "code") != "{score}" || !bytes.Contains(r.Body, []byte(`"valueQuantity":{"code":"{score}","system":"http://unitsofmeasure.org","unit":"{score}","value":`+want.metric+`}`)) ||
			str(o, "component", 0, "code", "coding", 0, "code") != "swemwbs-raw-score" || num(o, "component", 0, "valueQuantity", "value") != float64(want.raw) {
			t.Errorf("Observation/%s = %s, want metric %s as its value and raw %d as a component", m.ID, r.Body, want.metric, want.raw)
		}
		if comps, _ := o["component"].([]any); want.change != "" && (len(comps) != 9 ||
			str(o, "component", 8, "code", "coding", 0, "code") != "change-from-baseline" || !bytes.Contains(r.Body, []byte(`"value":`+want.change+`}`)) ||
			str(o, "derivedFrom", 0, "reference") != "Observation/"+cv.Measures[0].ID) {
			t.Errorf("Observation/%s = %s, want the change %s from Observation/%s", m.ID, r.Body, want.change, cv.Measures[0].ID)
		}
		if str(o, "extension", 0, "valueCode") != want.tp || str(o, "effectiveDateTime") != m.TakenAt.Format(time.RFC3339) {
			t.Errorf("Observation/%s timepoint/effective = %v/%v", m.ID, o["extension"], o["effectiveDateTime"])
		}
	}

	// Discharge: goals met, with a summary.
	ts.Clock.Set(time.Date(2027, 2, 2, 9, 0, 0, 0, time.UTC))
	summary := "Walks with the group every Tuesday and sees her colleague weekly"
	cv = c.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionComplete, ReasonCode: "goals-met", Summary: summary})
	c.checkReads(c.check(stage{name: "complete", status: linkbridge.TaskCompleted, business: linkbridge.BusinessDischarged, taskChanged: true, measures: 2, carePlan: "completed", procedure: true}))
	if cv.Referral.DischargeReason != "goals-met" || cv.Referral.DischargeSummary != summary || cv.Referral.CompletedAt.IsZero() {
		t.Errorf("discharged referral = %+v", cv.Referral)
	}
	task = ts.fhirDoc("/Task/" + c.TaskID)
	// The Task carries the coded discharge reason (never the summary), and
	// so does the closed CarePlan.
	if str(task, "executionPeriod", "end") != "2027-02-02T09:00:00Z" || str(task, "statusReason", "text") != "goals met" {
		t.Errorf("completed Task executionPeriod/statusReason = %v/%v", at(task, "executionPeriod"), at(task, "statusReason"))
	}
	if cp := ts.fhirDoc("/CarePlan/" + fhirmap.CarePlanID(c.ID)); str(cp, "note", 0, "text") != "Closed: goals-met" {
		t.Errorf("completed CarePlan note = %v, want the discharge reason", at(cp, "note"))
	}
	proc := ts.fhirDoc("/Procedure/" + fhirmap.AcceptanceID(c.ID))
	if str(proc, "performedPeriod", "end") != "2027-02-02T09:00:00Z" || str(proc, "note", 0, "text") != summary {
		t.Errorf("acceptance Procedure after discharge = %v, want performedPeriod to discharge and the summary (full consent)", proc)
	}
	if got := len(cv.History); got != 13 {
		t.Errorf("history has %d events, want 13 (received, consent, accept, 6 contacts, plan, 2 measures, complete)", got)
	}

	// Versions: the Task moved with every step but consent; the CarePlan
	// at accept, plan and discharge; the Procedure at accept and discharge;
	// a Goal at plan and at discharge (its outcome); the referral's
	// ServiceRequest and Patient never.
	for ref, want := range map[string]int{
		"Task/" + c.TaskID:                                12,
		"CarePlan/" + fhirmap.CarePlanID(c.ID):            3,
		"Procedure/" + fhirmap.AcceptanceID(c.ID):         2,
		"ServiceRequest/" + c.ID:                          1,
		"Patient/" + c.PersonID:                           1,
		"Encounter/" + cv.Contacts[0].ID:                  1,
		"Goal/" + cv.Plan.Goals[0].ID:                     2,
		"Observation/" + cv.Measures[0].ID:                1,
		"Observation/" + cv.Measures[1].ID:                1,
		"ServiceRequest/" + cv.Plan.OnwardReferrals[0].ID: 1,
	} {
		if got := ts.historyVersions(ref); got != want {
			t.Errorf("%s has %d versions, want %d", ref, got, want)
		}
	}
	if v1 := ts.fhirDoc("/Task/" + c.TaskID + "/_history/1"); str(v1, "status") != "requested" {
		t.Errorf("Task version 1 status = %q, want requested", str(v1, "status"))
	}
	if v2 := ts.fhirDoc("/CarePlan/" + fhirmap.CarePlanID(c.ID) + "/_history/1"); str(v2, "status") != "active" || at(v2, "goal") != nil {
		t.Errorf("CarePlan version 1 = %v, want active without goals", v2)
	}

	// A closed referral takes no more contacts or plan changes.
	r := ts.sp(http.MethodPost, "/referrals/"+c.ID+"/contacts", contactIn(journeyContacts[0]), nil)
	wantSPError(t, r, http.StatusConflict, linkbridge.ECONFLICT, "completed")
	r = ts.sp(http.MethodPut, "/referrals/"+c.ID+"/plan", plan, nil)
	wantSPError(t, r, http.StatusConflict, linkbridge.ECONFLICT, "completed")

	// Caseload: one person taken on, five attended contacts, none active.
	r = ts.sp(http.MethodGet, "/caseload?linkWorker=lw-0042", nil, nil)
	wantSP(t, r, http.StatusOK)
	var load struct {
		Norms       map[string]int        `json:"norms"`
		LinkWorkers []httpapi.CaseloadRow `json:"linkWorkers"`
	}
	if err := json.Unmarshal(r.Body, &load); err != nil {
		t.Fatal(err)
	}
	if load.Norms["peoplePerYearLow"] != 200 || load.Norms["peoplePerYearHigh"] != 250 || load.Norms["contactsPerPersonLow"] != 6 || load.Norms["contactsPerPersonHigh"] != 12 {
		t.Errorf("caseload norms = %v, want 200–250 a year, 6–12 contacts", load.Norms)
	}
	if len(load.LinkWorkers) != 1 {
		t.Fatalf("caseload rows = %+v, want one for lw-0042", load.LinkWorkers)
	}
	row := load.LinkWorkers[0]
	if row.LinkWorker != lw || row.Active != 0 || row.TakenOnLast12Months != 1 || row.AverageContacts != 5 || row.OverYearNorm || row.OverContactNorm.Count != 0 || row.Open != 0 {
		t.Errorf("caseload row = %+v, want lw-0042: 0 active, 1 taken on, 5 contacts on average", row)
	}
}

// inbox lists referrals with a raw query string.
func (ts *testServer) inbox(t *testing.T, query string) httpapi.ReferralPage {
	t.Helper()
	r := ts.sp(http.MethodGet, "/referrals?"+query, nil, nil)
	wantSP(t, r, http.StatusOK)
	var p httpapi.ReferralPage
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("inbox page does not decode: %v", err)
	}
	return p
}

// allFHIRBodies returns every version of every FHIR resource that shows
// the case at /fhir (the case view's list), and every search answer for
// the patient, as raw bodies.
func (c *spCase) allFHIRBodies() map[string][]byte {
	c.t.Helper()
	out := map[string][]byte{}
	for _, ref := range c.get().FHIR {
		r := c.ts.get("/" + ref + "/_history")
		wantStatus(c.t, r, http.StatusOK)
		out[ref+"/_history"] = r.Body
	}
	for _, typ := range []string{"Task", "ServiceRequest", "CarePlan", "Goal", "Encounter", "Observation", "Procedure"} {
		r := c.ts.get("/" + typ + "?patient=Patient/" + c.PersonID + "&_count=200")
		wantStatus(c.t, r, http.StatusOK)
		out[typ+"?patient"] = r.Body
	}
	return out
}

// TestJourneyCodesOnly runs a whole case under codes-only consent: the
// coded entries and statuses reach the FHIR view, no free text does.
func TestJourneyCodesOnly(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.intake(t, mustRead(t, fixReferralTxn))
	c.write(http.MethodPut, "/consent", httpapi.ConsentRequest{Consent: linkbridge.ConsentCodesOnly}, http.StatusOK)

	plan := journeyPlan()
	contact := journeyContacts[0]
	holdReason := "In hospital after a fall until the new year"
	summary := "Settled into the walking group; daughter now visits daily"
	secrets := []string{contact.Notes, plan.WhatMatters, plan.Goals[0].Description, plan.Goals[1].Description,
		plan.Actions[0].Description, plan.OnwardReferrals[0].Service, plan.OnwardReferrals[0].Reason, plan.Signposts[0].Reason, plan.Signposts[0].To,
		plan.Risks[0], plan.Needs[1].Text, holdReason, summary}

	ts.Clock.Set(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)) // after the contact it records
	c.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: &linkbridge.LinkWorker{ID: "lw-7"}})
	c.check(stage{name: "accept", status: linkbridge.TaskAccepted, business: linkbridge.BusinessAccepted, taskChanged: true, carePlan: "active"})
	c.write(http.MethodPost, "/contacts", contactIn(contact), http.StatusCreated)
	c.write(http.MethodPut, "/plan", plan, http.StatusOK)
	c.write(http.MethodPost, "/measures", swemwbs(linkbridge.TimepointBaseline, []int{3, 3, 3, 3, 3, 3, 3}, contact.At), http.StatusCreated)
	c.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionHold, Reason: holdReason})
	cv := c.check(stage{name: "hold", status: linkbridge.TaskOnHold, business: linkbridge.BusinessOnHold, taskNew: 4, measures: 1, carePlan: "on-hold", procedure: true})
	if cv.Referral.StatusReason != holdReason {
		t.Errorf("the store keeps the free-text reason: statusReason = %q, want %q", cv.Referral.StatusReason, holdReason)
	}
	if got := str(ts.fhirDoc("/Task/"+c.TaskID), "statusReason", "text"); got != "On hold" {
		t.Errorf("codes-only Task.statusReason = %q, want the coded reason %q", got, "On hold")
	}
	c.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionResume})
	c.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionComplete, ReasonCode: "goals-met", Summary: summary})
	cv = c.check(stage{name: "complete", status: linkbridge.TaskCompleted, business: linkbridge.BusinessDischarged, taskNew: 2, measures: 1, carePlan: "completed", procedure: true})

	// The codes still reach the GP record.
	goal := ts.fhirDoc("/Goal/" + cv.Plan.Goals[0].ID)
	if !strings.Contains(str(goal, "description", "text"), "details held by the social prescribing service") {
		t.Errorf("codes-only Goal.description = %q, want the placeholder", str(goal, "description", "text"))
	}
	if len(ts.searchDocs("Observation", "code", fhirmap.SCTSWEMWBS)) != 1 {
		t.Errorf("codes-only: the SWEMWBS Observation is missing")
	}

	for name, body := range c.allFHIRBodies() {
		for _, s := range secrets {
			if bytes.Contains(body, []byte(s)) {
				t.Errorf("codes-only: %s carries free text %q", name, s)
			}
		}
	}
}

// TestJourneyLateBaseline: a baseline recorded after a follow-up it
// precedes in time gives that follow-up its change from baseline, in the
// case view and as a new version of its Observation
// (docs/domain.md#change-from-baseline).
func TestJourneyLateBaseline(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.intake(t, mustRead(t, fixReferralTxn))
	ts.Clock.Set(time.Date(2027, 1, 5, 9, 0, 0, 0, time.UTC)) // the measures are recorded afterwards
	c.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: &linkbridge.LinkWorker{ID: "lw-9", Name: "Jo"}})
	taken := journeyContacts[0].At
	ucla3 := func(tp linkbridge.Timepoint, at time.Time, items ...int) jsonDoc {
		return measureIn(linkbridge.Measure{Instrument: linkbridge.UCLA3, Timepoint: tp, Items: items, TakenAt: at})
	}
	cv := c.write(http.MethodPost, "/measures", ucla3(linkbridge.TimepointReview, taken.AddDate(0, 0, 30), 1, 2, 2), http.StatusCreated)
	review := cv.Measures[0]
	if review.ChangeFromBaseline != nil {
		t.Errorf("review without a baseline has a change: %+v", review.ChangeFromBaseline)
	}
	o := ts.fhirDoc("/Observation/" + review.ID)
	if num(o, "valueQuantity", "value") != 5 || at(o, "derivedFrom") != nil || len(o["component"].([]any)) != 3 {
		t.Errorf("Observation/%s without a baseline = %v, want total 5, three items, no change", review.ID, o)
	}

	cv = c.write(http.MethodPost, "/measures", ucla3(linkbridge.TimepointBaseline, taken, 3, 3, 2), http.StatusCreated)
	var base *httpapi.MeasureView
	for _, m := range cv.Measures {
		if m.ID == review.ID {
			review = m
		} else {
			base = m
		}
	}
	if len(cv.Measures) != 2 || base.Timepoint != linkbridge.TimepointBaseline || base.ChangeFromBaseline != nil {
		t.Fatalf("measures = %+v; want the review and a baseline without a change", cv.Measures)
	}
	if ch := review.ChangeFromBaseline; ch == nil || ch.BaselineID != base.ID || ch.Score == nil || *ch.Score != -3 || !slices.Equal(ch.Items, []int{-2, -1, 0}) {
		t.Errorf("review change from baseline = %+v, want -3 (items -2 -1 0) from %s", ch, base.ID)
	}
	// Read back from the store (measures by time taken), the same change.
	if read := c.get(); len(read.Measures) != 2 || read.Measures[0].ID != base.ID || read.Measures[1].ChangeFromBaseline == nil ||
		*read.Measures[1].ChangeFromBaseline.Score != -3 {
		t.Errorf("case read back: measures %+v, want the baseline then the review with its change", read.Measures)
	}
	if got := ts.historyVersions("Observation/" + review.ID); got != 2 {
		t.Errorf("Observation/%s has %d versions, want 2 (the baseline gave it its change)", review.ID, got)
	}
	o = ts.fhirDoc("/Observation/" + review.ID)
	if str(o, "derivedFrom", 0, "reference") != "Observation/"+base.ID || str(o, "component", 3, "code", "coding", 0, "code") != "change-from-baseline" ||
		num(o, "component", 3, "valueQuantity", "value") != -3 || str(o, "component", 3, "valueQuantity", "code") != "{score}" {
		t.Errorf("Observation/%s with its baseline = %v, want the change -3 {score} from Observation/%s", review.ID, o, base.ID)
	}
}

// TestJourneyConsentNone: with no consent to share, only the referral Task
// changes; no resource about the care reaches /fhir.
func TestJourneyConsentNone(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.intake(t, mustRead(t, fixReferralTxn))
	c.write(http.MethodPut, "/consent", httpapi.ConsentRequest{Consent: linkbridge.ConsentNone}, http.StatusOK)

	ts.Clock.Set(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)) // after the contact it records
	c.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: &linkbridge.LinkWorker{ID: "lw-9", Name: "Jo"}})
	c.check(stage{name: "accept", status: linkbridge.TaskAccepted, business: linkbridge.BusinessAccepted, taskChanged: true})
	c.write(http.MethodPost, "/contacts", contactIn(journeyContacts[0]), http.StatusCreated)
	c.write(http.MethodPut, "/plan", journeyPlan(), http.StatusOK)
	c.check(stage{name: "plan", status: linkbridge.TaskInProgress, business: linkbridge.BusinessPlanAgreed, taskNew: 2})
	c.write(http.MethodPost, "/measures", swemwbs(linkbridge.TimepointBaseline, []int{1, 2, 3, 4, 5, 1, 2}, journeyContacts[0].At), http.StatusCreated)
	// A measure changes nothing the GP record may see: not even the Task.
	c.check(stage{name: "measure", status: linkbridge.TaskInProgress, business: linkbridge.BusinessPlanAgreed, measures: 1})
	cv := c.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionComplete, ReasonCode: "referred-on", Summary: "Private summary"})
	c.checkReads(c.check(stage{name: "complete", status: linkbridge.TaskCompleted, business: linkbridge.BusinessDischarged, taskChanged: true, measures: 1}))

	if want := []string{"ServiceRequest/" + c.ID, "Task/" + c.TaskID}; !slices.Equal(cv.FHIR, want) {
		t.Errorf("consent none: fhir list = %q, want only %q", cv.FHIR, want)
	}
	for _, typ := range []string{"CarePlan", "Goal", "Encounter", "Observation", "Procedure"} {
		if n := len(ts.searchDocs(typ)); n != 0 {
			t.Errorf("consent none: %d %s resources at /fhir, want none", n, typ)
		}
	}
	if got := ts.historyVersions("ServiceRequest/" + c.ID); got != 1 {
		t.Errorf("consent none: the referral ServiceRequest has %d versions, want 1", got)
	}
	if got := ts.historyVersions("Patient/" + c.PersonID); got != 1 {
		t.Errorf("consent none: the Patient has %d versions, want 1", got)
	}
	if body := ts.get("/Task/" + c.TaskID + "/_history").Body; bytes.Contains(body, []byte("Private summary")) {
		t.Errorf("consent none: the Task carries the discharge summary")
	}
}

// TestSPLifecycleOverHTTP covers the actions the journey does not: decline
// (coded reason and text), explicit start, hold and resume, fail and
// cancel, each as the Task and the FHIR view show it.
func TestSPLifecycleOverHTTP(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	base := mustRead(t, fixReferralTxn)
	newCase := func(n int, consent linkbridge.ConsentLevel) *spCase {
		t.Helper()
		c := ts.intake(t, withIdentifier(t, base, fmt.Sprintf("lifecycle-%d", n)))
		c.write(http.MethodPut, "/consent", httpapi.ConsentRequest{Consent: consent}, http.StatusOK)
		return c
	}
	lw := &linkbridge.LinkWorker{ID: "lw-1"}

	// Each block is one case on the same server (ts reports failures on
	// the parent test, so these are blocks, not subtests).
	// DeclineFullConsent.
	func() {
		c := newCase(1, linkbridge.ConsentFull)
		cv := c.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionDecline, ReasonCode: "person-declined", Reason: "Would rather wait until the spring"})
		if cv.Referral.Status != linkbridge.TaskRejected || cv.Referral.BusinessStatus != linkbridge.BusinessDeclined || cv.Referral.DeclineReason != "person-declined" {
			t.Errorf("declined referral = %+v", cv.Referral)
		}
		task := ts.fhirDoc("/Task/" + c.TaskID)
		if str(task, "status") != "rejected" || str(task, "statusReason", "text") != "person declined: Would rather wait until the spring" {
			t.Errorf("declined Task status/statusReason = %q/%q", str(task, "status"), str(task, "statusReason", "text"))
		}
		obs := ts.fhirDoc("/Observation/" + fhirmap.DeclinedID(c.ID))
		if str(obs, "code", "coding", 0, "code") != linkbridge.SCTSocialPrescribingDeclined || str(obs, "subject", "reference") != "Patient/"+c.PersonID {
			t.Errorf("decline Observation = %v, want SNOMED %s", obs, linkbridge.SCTSocialPrescribingDeclined)
		}
		if want := []string{"ServiceRequest/" + c.ID, "Task/" + c.TaskID, "Observation/" + fhirmap.DeclinedID(c.ID)}; !slices.Equal(cv.FHIR, want) {
			t.Errorf("declined fhir list = %q, want %q (no Procedure, no CarePlan)", cv.FHIR, want)
		}
		r := ts.sp(http.MethodPost, "/referrals/"+c.ID+"/actions", linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: lw}, nil)
		wantSPError(t, r, http.StatusConflict, linkbridge.ECONFLICT, "rejected")
	}()
	// ServiceDeclines: the service's own refusal is no coded entry.
	func() {
		c := newCase(10, linkbridge.ConsentFull)
		cv := c.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionDecline, ReasonCode: "out-of-area", Reason: "Lives over the border in Wales"})
		if want := []string{"ServiceRequest/" + c.ID, "Task/" + c.TaskID}; !slices.Equal(cv.FHIR, want) {
			t.Errorf("service-declined fhir list = %q, want %q (no declined code)", cv.FHIR, want)
		}
	}()
	// DeclineCodesOnly.
	func() {
		c := newCase(2, linkbridge.ConsentCodesOnly)
		c.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionDecline, ReasonCode: "person-declined", Reason: "Says her son will help instead"})
		task := ts.get("/Task/" + c.TaskID)
		if got := str(mustParseJSON(t, task.Body), "statusReason", "text"); got != "Declined: person-declined" {
			t.Errorf("codes-only declined Task.statusReason = %q, want the code only", got)
		}
		if bytes.Contains(task.Body, []byte("her son")) {
			t.Errorf("codes-only: the decline text reached the Task")
		}
	}()
	// StartHoldResumeFail.
	func() {
		c := newCase(3, linkbridge.ConsentFull)
		c.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: lw})
		cv := c.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionStart})
		if cv.Referral.Status != linkbridge.TaskInProgress || cv.Referral.BusinessStatus != linkbridge.BusinessFirstContactMade {
			t.Errorf("started referral = %s/%s", cv.Referral.Status, cv.Referral.BusinessStatus)
		}
		c.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionHold, Reason: "Person away for a month"})
		task := ts.fhirDoc("/Task/" + c.TaskID)
		if str(task, "status") != "on-hold" || str(task, "statusReason", "text") != "Person away for a month" {
			t.Errorf("held Task = %q/%q", str(task, "status"), str(task, "statusReason", "text"))
		}
		if got := str(ts.fhirDoc("/CarePlan/"+fhirmap.CarePlanID(c.ID)), "status"); got != "on-hold" {
			t.Errorf("CarePlan of a held referral = %q, want on-hold", got)
		}
		c.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionResume})
		task = ts.fhirDoc("/Task/" + c.TaskID)
		if str(task, "status") != "in-progress" || at(task, "statusReason") != nil {
			t.Errorf("resumed Task = %q, statusReason %v, want in-progress and none", str(task, "status"), at(task, "statusReason"))
		}
		cv = c.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionFail, ReasonCode: "unable-to-contact", Reason: "Three calls unanswered"})
		if cv.Referral.BusinessStatus != linkbridge.BusinessCouldNotContact || cv.Referral.CompletedAt.IsZero() {
			t.Errorf("failed referral = %+v", cv.Referral)
		}
		task = ts.fhirDoc("/Task/" + c.TaskID)
		if str(task, "status") != "failed" || str(task, "statusReason", "text") != "unable to contact: Three calls unanswered" {
			t.Errorf("failed Task = %q/%q", str(task, "status"), str(task, "statusReason", "text"))
		}
		if got := str(ts.fhirDoc("/CarePlan/"+fhirmap.CarePlanID(c.ID)), "status"); got != "revoked" {
			t.Errorf("CarePlan of a failed referral = %q, want revoked", got)
		}
	}()
	// Cancel.
	func() {
		c := newCase(4, linkbridge.ConsentFull)
		cv := c.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionCancel, Reason: "Sent to us by mistake"})
		if cv.Referral.Status != linkbridge.TaskCancelled || cv.Referral.BusinessStatus != linkbridge.BusinessCancelledBySPLW {
			t.Errorf("cancelled referral = %s/%s", cv.Referral.Status, cv.Referral.BusinessStatus)
		}
		task := ts.fhirDoc("/Task/" + c.TaskID)
		if str(task, "status") != "cancelled" || str(task, "statusReason", "text") != "Sent to us by mistake" {
			t.Errorf("cancelled Task = %q/%q", str(task, "status"), str(task, "statusReason", "text"))
		}
	}()
}

// TestSPInbox filters the referral inbox by service, status, link worker
// and received date, and pages it.
func TestSPInbox(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	base := mustRead(t, fixReferralTxn)
	var cases []*spCase
	for i := range 3 {
		ts.Clock.Set(time.Date(2026, 11, 20+i, 10, 0, 0, 0, time.UTC))
		cases = append(cases, ts.intake(t, withIdentifier(t, base, fmt.Sprintf("inbox-%d", i))))
	}
	cases[1].action(linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: &linkbridge.LinkWorker{ID: "lw-a"}})
	cases[2].action(linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: &linkbridge.LinkWorker{ID: "lw-b"}})

	ids := func(p httpapi.ReferralPage) []string {
		var out []string
		for _, r := range p.Items {
			for i, c := range cases {
				if c.ID == r.ID {
					out = append(out, strconv.Itoa(i))
				}
			}
		}
		return out
	}
	for _, tt := range []struct {
		query string
		want  []string // case numbers, newest received first
		total int
	}{
		{"service=Y02662", []string{"2", "1", "0"}, 3},
		{"service=A99999", nil, 0},
		{"status=requested", []string{"0"}, 1},
		{"status=accepted,requested", []string{"2", "1", "0"}, 3},
		{"status=rejected", nil, 0},
		{"linkWorker=lw-a", []string{"1"}, 1},
		{"receivedFrom=2026-11-21", []string{"2", "1"}, 2},
		{"receivedTo=2026-11-21", []string{"0"}, 1},
		{"receivedFrom=2026-11-21T00:00:00Z&receivedTo=2026-11-22T00:00:00Z", []string{"1"}, 1},
		{"limit=2", []string{"2", "1"}, 3},
		{"limit=2&offset=2", []string{"0"}, 3},
		{"limit=1&offset=1&service=Y02662", []string{"1"}, 3},
	} {
		p := ts.inbox(t, tt.query)
		if got := ids(p); !slices.Equal(got, tt.want) || p.Total != tt.total || len(p.Items) != len(tt.want) {
			t.Errorf("inbox?%s = cases %q (total %d), want %q (total %d)", tt.query, got, p.Total, tt.want, tt.total)
		}
	}
	for _, q := range []string{"status=bogus", "limit=x", "offset=-1", "receivedFrom=yesterday"} {
		wantSPError(t, ts.sp(http.MethodGet, "/referrals?"+q, nil, nil), http.StatusBadRequest, linkbridge.EINVALID)
	}
}

// TestSPErrors checks the error answers of /sp/v1: stale If-Match (412),
// unknown referral (404), wrong content type (415), unknown JSON field
// (400), an illegal action (409, naming both statuses) and a measure out
// of range (422, naming the item).
func TestSPErrors(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.intake(t, mustRead(t, fixReferralTxn))
	path := "/referrals/" + c.ID

	// Two writes from the same read: the second is stale.
	stale := c.ifMatch()
	r := ts.sp(http.MethodPut, path+"/consent", httpapi.ConsentRequest{Consent: linkbridge.ConsentFull}, stale)
	wantSP(t, r, http.StatusOK)
	r = ts.sp(http.MethodPut, path+"/consent", httpapi.ConsentRequest{Consent: linkbridge.ConsentNone}, stale)
	wantSPError(t, r, http.StatusPreconditionFailed, linkbridge.EPRECONDITION, "stale", "2")
	r = ts.sp(http.MethodPost, path+"/actions", linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: &linkbridge.LinkWorker{ID: "lw"}}, stale)
	wantSPError(t, r, http.StatusPreconditionFailed, linkbridge.EPRECONDITION)
	if cv := c.get(); cv.Referral.Version != 2 || cv.Referral.Consent != linkbridge.ConsentFull || cv.Referral.Status != linkbridge.TaskRequested {
		t.Errorf("after stale writes the referral is version %d, consent %q, status %s; want 2, full, requested", cv.Referral.Version, cv.Referral.Consent, cv.Referral.Status)
	}
	c.Version = 2
	wantSPError(t, ts.sp(http.MethodPut, path+"/consent", httpapi.ConsentRequest{Consent: linkbridge.ConsentFull}, hdr{"If-Match": "banana"}), http.StatusBadRequest, linkbridge.EINVALID)

	// Unknown referral.
	wantSPError(t, ts.sp(http.MethodGet, "/referrals/no-such-referral", nil, nil), http.StatusNotFound, linkbridge.ENOTFOUND)
	wantSPError(t, ts.sp(http.MethodPost, "/referrals/no-such-referral/actions", linkbridge.LifecycleCommand{Action: "start"}, nil), http.StatusNotFound, linkbridge.ENOTFOUND)
	wantSPError(t, ts.sp(http.MethodPost, "/referrals/no-such-referral/contacts", contactIn(journeyContacts[0]), nil), http.StatusNotFound, linkbridge.ENOTFOUND)

	// Wrong content type, unknown field, malformed JSON.
	body := mustJSON(t, linkbridge.LifecycleCommand{Action: linkbridge.ActionStart})
	wantSPError(t, ts.sp(http.MethodPost, path+"/actions", body, hdr{"Content-Type": "text/plain"}), http.StatusUnsupportedMediaType, linkbridge.EUNSUPPORTED)
	wantSPError(t, ts.sp(http.MethodPost, path+"/actions", body, hdr{"Content-Type": "application/fhir+json"}), http.StatusUnsupportedMediaType, linkbridge.EUNSUPPORTED)
	wantSPError(t, ts.sp(http.MethodPost, path+"/actions", []byte(`{"action":"accept","linkWorkerId":"lw"}`), nil), http.StatusBadRequest, linkbridge.EINVALID, "unknown field", "linkWorkerId")
	wantSPError(t, ts.sp(http.MethodPut, path+"/plan", []byte(`{"goals":[{"description":"x","importance":5,"confidence":5,"status":"active","priority":1}]}`), nil), http.StatusBadRequest, linkbridge.EINVALID, "priority")
	wantSPError(t, ts.sp(http.MethodPost, path+"/contacts", []byte(`{"at":`), nil), http.StatusBadRequest, linkbridge.EINVALID, "malformed JSON")
	wantSPError(t, ts.sp(http.MethodPost, path+"/contacts", []byte(`{"at":"2026-11-23T10:00:00Z","mode":"phone","minutes":"ten","attended":true}`), nil), http.StatusBadRequest, linkbridge.EINVALID, "minutes")

	// Illegal lifecycle moves name the statuses.
	wantSPError(t, ts.sp(http.MethodPost, path+"/actions", linkbridge.LifecycleCommand{Action: linkbridge.ActionComplete, ReasonCode: "goals-met"}, nil),
		http.StatusConflict, linkbridge.ECONFLICT, "requested", "completed")
	wantSPError(t, ts.sp(http.MethodPost, path+"/actions", linkbridge.LifecycleCommand{Action: linkbridge.ActionStart}, nil),
		http.StatusConflict, linkbridge.ECONFLICT, "accepted", "requested")
	wantSPError(t, ts.sp(http.MethodPost, path+"/actions", linkbridge.LifecycleCommand{Action: linkbridge.ActionResume}, nil),
		http.StatusConflict, linkbridge.ECONFLICT, "on hold", "requested")
	// Work before acceptance is refused.
	wantSPError(t, ts.sp(http.MethodPost, path+"/contacts", contactIn(journeyContacts[0]), nil), http.StatusConflict, linkbridge.ECONFLICT, "requested")
	wantSPError(t, ts.sp(http.MethodPut, path+"/plan", journeyPlan(), nil), http.StatusConflict, linkbridge.ECONFLICT, "requested")
	wantSPError(t, ts.sp(http.MethodPost, path+"/measures", swemwbs(linkbridge.TimepointBaseline, []int{1, 1, 1, 1, 1, 1, 1}, journeyContacts[0].At), nil),
		http.StatusConflict, linkbridge.ECONFLICT, "requested")

	// Business rules: 422 naming the field.
	e := wantSPError(t, ts.sp(http.MethodPost, path+"/actions", linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept}, nil), http.StatusUnprocessableEntity, linkbridge.EUNPROCESSABLE)
	if !slices.Equal(e.Fields, []string{"linkWorker.id"}) {
		t.Errorf("accept without link worker names %q, want linkWorker.id", e.Fields)
	}
	e = wantSPError(t, ts.sp(http.MethodPost, path+"/actions", linkbridge.LifecycleCommand{Action: linkbridge.ActionDecline, ReasonCode: "too-busy"}, nil), http.StatusUnprocessableEntity, linkbridge.EUNPROCESSABLE, "out-of-area")
	if !slices.Equal(e.Fields, []string{"reasonCode"}) {
		t.Errorf("decline with unknown reason names %q, want reasonCode", e.Fields)
	}
	wantSPError(t, ts.sp(http.MethodPut, path+"/consent", httpapi.ConsentRequest{Consent: "some"}, nil), http.StatusUnprocessableEntity, linkbridge.EUNPROCESSABLE)

	c.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: &linkbridge.LinkWorker{ID: "lw"}})
	e = wantSPError(t, ts.sp(http.MethodPost, path+"/measures", swemwbs(linkbridge.TimepointBaseline, []int{1, 2, 3, 6, 1, 1, 1}, journeyContacts[0].At), nil),
		http.StatusUnprocessableEntity, linkbridge.EUNPROCESSABLE, "item 4")
	if !slices.Equal(e.Fields, []string{"items[3]"}) {
		t.Errorf("out-of-range item names %q, want items[3]", e.Fields)
	}
	e = wantSPError(t, ts.sp(http.MethodPost, path+"/measures", measureIn(linkbridge.Measure{Instrument: linkbridge.ONS4, Timepoint: linkbridge.TimepointBaseline, Items: []int{5, 5, 5}, TakenAt: journeyContacts[0].At}), nil),
		http.StatusUnprocessableEntity, linkbridge.EUNPROCESSABLE, "4 items")
	e = wantSPError(t, ts.sp(http.MethodPost, path+"/contacts", contactIn(linkbridge.Contact{At: journeyContacts[0].At, Mode: linkbridge.ContactPhone, Minutes: 20}), nil),
		http.StatusUnprocessableEntity, linkbridge.EUNPROCESSABLE, "did not attend")
	if !slices.Equal(e.Fields, []string{"minutes"}) {
		t.Errorf("DNA with minutes names %q, want minutes", e.Fields)
	}
	plan := journeyPlan()
	plan.Goals[1].Importance = 11
	e = wantSPError(t, ts.sp(http.MethodPut, path+"/plan", plan, nil), http.StatusUnprocessableEntity, linkbridge.EUNPROCESSABLE, "importance")
	if !slices.Equal(e.Fields, []string{"goals[1].importance"}) {
		t.Errorf("goal importance 11 names %q, want goals[1].importance", e.Fields)
	}
	// None of the refused writes moved the referral.
	if cv := c.get(); cv.Referral.Version != c.Version || len(cv.Measures) != 0 || len(cv.Contacts) != 0 || len(cv.Plan.Goals) != 0 {
		t.Errorf("refused writes changed the case: version %d (want %d), %d measures, %d contacts, %d goals", cv.Referral.Version, c.Version, len(cv.Measures), len(cv.Contacts), len(cv.Plan.Goals))
	}
}
