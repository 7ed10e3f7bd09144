package httpapi_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/fhirmap"

	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	srpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/service_request_go_proto"
	taskpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
)

// searchFixture is four referrals stored an hour apart, and what the tests
// need to know about them.
type searchFixture struct {
	ts *testServer
	t0 time.Time
	// Per referral (A: base transaction, B: PractitionerRole transaction,
	// C: POST /ServiceRequest, D: $process-message): "Task/<id>",
	// "ServiceRequest/<id>" and "Patient/<id>".
	task, sr, patient [4]string
	roleRef           string // B's requester, "PractitionerRole/<id>"
}

func newSearchFixture(t *testing.T) *searchFixture {
	t.Helper()
	ts := newTestServer(t)
	f := &searchFixture{ts: ts, t0: ts.Clock.Now()}

	ref := func(loc string) string {
		typ, id, _ := parseLocation(t, loc)
		return typ + "/" + id
	}
	// A
	a := bundle(t, ts.post("", mustRead(t, fixReferralTxn), nil), "transaction-response")
	f.patient[0], f.sr[0], f.task[0] = ref(a.GetEntry()[0].GetResponse().GetLocation().GetValue()),
		ref(a.GetEntry()[1].GetResponse().GetLocation().GetValue()), ref(a.GetEntry()[2].GetResponse().GetLocation().GetValue())
	// B
	ts.Clock.Set(f.t0.Add(1 * time.Hour))
	b := bundle(t, ts.post("", mustRead(t, fixRoleTxn), nil), "transaction-response")
	for _, e := range b.GetEntry() {
		r := ref(e.GetResponse().GetLocation().GetValue())
		switch strings.SplitN(r, "/", 2)[0] {
		case "Patient":
			f.patient[1] = r
		case "ServiceRequest":
			f.sr[1] = r
		case "Task":
			f.task[1] = r
		case "PractitionerRole":
			f.roleRef = r
		}
	}
	// C
	ts.Clock.Set(f.t0.Add(2 * time.Hour))
	c := ts.post("/ServiceRequest", mustRead(t, fixSRContained), nil)
	wantStatus(t, c, http.StatusCreated)
	f.sr[2] = ref(c.Header.Get("Location"))
	f.task[2] = matchIDs(ts.search("Task", vals("focus", f.sr[2])))[0]
	task := entryResource[*taskpb.Task](t, ts.search("Task", vals("_id", strings.TrimPrefix(f.task[2], "Task/"))))
	_, pid := fhirmap.RefTarget(task.GetForValue())
	f.patient[2] = "Patient/" + pid
	// D
	ts.Clock.Set(f.t0.Add(3 * time.Hour))
	d := bundle(t, ts.post("/$process-message", mustRead(t, fixMsgNew), barsHeaders(reqID1, corrID1)), "message")
	dt := entryResource[*taskpb.Task](t, d)
	f.task[3] = "Task/" + fhirmap.ID(dt)
	f.sr[3] = "ServiceRequest/" + fhirmap.ID(entryResource[*srpb.ServiceRequest](t, d))
	_, pid = fhirmap.RefTarget(dt.GetForValue())
	f.patient[3] = "Patient/" + pid
	ts.Clock.Set(f.t0.Add(4 * time.Hour))
	return f
}

func idOf(ref string) string { return ref[strings.Index(ref, "/")+1:] }

func TestSearch(t *testing.T) {
	t.Parallel()
	f := newSearchFixture(t)
	ts := f.ts
	ods := linkbridge.ODSSystem + "|"

	tests := []struct {
		name string
		typ  string
		q    url.Values
		want []string // match entries, in result order (lastUpdated, then id)
	}{
		{"TaskAll", "Task", nil, f.task[:]},
		{"TaskPatientRef", "Task", vals("patient", f.patient[0]), f.task[:1]},
		{"TaskPatientBareID", "Task", vals("patient", idOf(f.patient[1])), f.task[1:2]},
		{"TaskPatientAbsolute", "Task", vals("patient", ts.URL+"/"+f.patient[3]), f.task[3:4]},
		{"TaskPatientOr", "Task", vals("patient", f.patient[0]+","+f.patient[2]), []string{f.task[0], f.task[2]}},
		{"TaskSubject", "Task", vals("subject", f.patient[2]), f.task[2:3]},
		{"TaskStatus", "Task", vals("status", "requested"), f.task[:]},
		{"TaskStatusNone", "Task", vals("status", "completed"), nil},
		{"TaskOwnerIdentifier", "Task", vals("owner:identifier", ods+"Y02662"), f.task[:1]},
		{"TaskOwnerIdentifierContainedCase", "Task", vals("owner:identifier", ods+"Y03010"), f.task[2:3]},
		{"TaskOwnerIdentifierOr", "Task", vals("owner:identifier", ods+"Y02662,"+ods+"Y03010"), []string{f.task[0], f.task[2]}},
		// An escaped comma is part of the value (search.html#escaping): one
		// value, which no Task has.
		{"TaskOwnerIdentifierEscapedComma", "Task", vals("owner:identifier", ods+`Y02662\,`+ods+"Y03010"), nil},
		{"TaskRequesterReference", "Task", vals("requester", f.roleRef), f.task[1:2]},
		{"TaskRequesterIdentifier", "Task", vals("requester:identifier", ods+"A81001"), f.task[:1]},
		{"TaskFocus", "Task", vals("focus", f.sr[1]), f.task[1:2]},
		{"TaskCode", "Task", vals("code", fhirmap.TaskCodeSystem+"|fulfill"), f.task[:]},
		{"TaskID", "Task", vals("_id", idOf(f.task[0])+","+idOf(f.task[3])), []string{f.task[0], f.task[3]}},
		{"TaskIDAndStatus", "Task", vals("_id", idOf(f.task[0]), "status", "requested"), f.task[:1]},
		{"TaskLastUpdatedGt", "Task", vals("_lastUpdated", "gt"+f.t0.Add(90*time.Minute).Format(time.RFC3339)), f.task[2:]},
		{"TaskLastUpdatedGe", "Task", vals("_lastUpdated", "ge"+f.t0.Add(time.Hour).Format(time.RFC3339)), f.task[1:]},
		{"TaskLastUpdatedLt", "Task", vals("_lastUpdated", "lt"+f.t0.Add(time.Hour).Format(time.RFC3339)), f.task[:1]},
		{"TaskLastUpdatedRange", "Task", vals("_lastUpdated", "gt"+f.t0.Format(time.RFC3339), "_lastUpdated", "lt"+f.t0.Add(3*time.Hour).Format(time.RFC3339)), f.task[1:3]},
		{"TaskLastUpdatedDay", "Task", vals("_lastUpdated", f.t0.Format("2006-01-02")), f.task[:]},
		{"TaskPollingQuery", "Task", vals("owner:identifier", ods+"Y02662", "_lastUpdated", "gt"+f.t0.Add(-time.Minute).Format(time.RFC3339), "status", "requested"), f.task[:1]},
		{"TaskPatientIdentifierChain", "Task", vals("patient.identifier", linkbridge.NHSNumberSystem+"|"+nhsRoleTxn), f.task[1:2]},
		{"TaskPatientIdentifierChainUnknown", "Task", vals("patient.identifier", linkbridge.NHSNumberSystem+"|9990712727"), nil},
		{"ServiceRequestIdentifier", "ServiceRequest", vals("identifier", referralIDSys+"|"+referralTxnID), f.sr[:1]},
		{"ServiceRequestIdentifierValueOnly", "ServiceRequest", vals("identifier", msgNewReferral), f.sr[3:4]},
		{"ServiceRequestIdentifierWrongSystem", "ServiceRequest", vals("identifier", "https://other.example/Id|"+referralTxnID), nil},
		// An escaped "|" is not the system's separator: a value "system|",
		// not "any value in the system" (which is refused).
		{"ServiceRequestIdentifierEscapedBar", "ServiceRequest", vals("identifier", referralIDSys+`\|`), nil},
		{"ServiceRequestPatient", "ServiceRequest", vals("patient", f.patient[1]), f.sr[1:2]},
		{"ServiceRequestStatus", "ServiceRequest", vals("status", "active"), f.sr[:]},
		{"ServiceRequestCode", "ServiceRequest", vals("code", linkbridge.SNOMEDSystem+"|"+linkbridge.SCTReferralToSocialPrescribing), f.sr[:]},
		{"PatientIdentifier", "Patient", vals("identifier", linkbridge.NHSNumberSystem+"|"+nhsReferralTxn), f.patient[:1]},
		{"PatientIdentifierNormalised", "Patient", vals("identifier", linkbridge.NHSNumberSystem+"|"+nhsRoleTxn), f.patient[1:2]},
		{"PatientIdentifierContained", "Patient", vals("identifier", linkbridge.NHSNumberSystem+"|"+nhsSRContained), f.patient[2:3]},
		{"PatientGP", "Patient", vals("general-practitioner:identifier", ods+"B86016"), f.patient[1:2]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := ts.search(tt.typ, tt.q)
			got := matchIDs(b)
			if !slices.Equal(got, tt.want) {
				t.Errorf("%s?%s matches %v, want %v", tt.typ, tt.q.Encode(), got, tt.want)
			}
			if int(b.GetTotal().GetValue()) != len(tt.want) {
				t.Errorf("total = %d, want %d", b.GetTotal().GetValue(), len(tt.want))
			}
			for _, e := range b.GetEntry() {
				r := fhirmap.Unwrap(e.GetResource())
				if want := ts.URL + "/" + fhirmap.TypeName(r) + "/" + fhirmap.ID(r); e.GetFullUrl().GetValue() != want {
					t.Errorf("fullUrl = %q, want %q", e.GetFullUrl().GetValue(), want)
				}
			}
		})
	}

	t.Run("PostSearch", func(t *testing.T) {
		r := ts.do(http.MethodPost, "/Task/_search", []byte(vals("patient", f.patient[0]).Encode()), hdr{"Content-Type": "application/x-www-form-urlencoded"})
		b := bundle(t, r, "searchset")
		if got := matchIDs(b); !slices.Equal(got, f.task[:1]) {
			t.Errorf("POST Task/_search matches %v, want %v", got, f.task[:1])
		}
	})
}

func TestSearchStatusFollowsUpdates(t *testing.T) {
	t.Parallel()
	f := newSearchFixture(t)
	ts := f.ts
	task := mustParseJSON(t, ts.get("/"+f.task[2]).Body)
	wantStatus(t, ts.do(http.MethodPut, "/"+f.task[2], withStatus(t, task, "cancelled", "No longer needed"), nil), http.StatusOK)
	if got := matchIDs(ts.search("Task", vals("status", "cancelled"))); !slices.Equal(got, f.task[2:3]) {
		t.Errorf("Task?status=cancelled = %v, want %v", got, f.task[2:3])
	}
	if n := ts.total("Task", vals("status", "requested")); n != 3 {
		t.Errorf("Task?status=requested total = %d, want 3", n)
	}
	// The changed Task is now the most recently updated.
	if got := matchIDs(ts.search("Task", vals("_lastUpdated", "gt"+f.t0.Add(3*time.Hour+time.Minute).Format(time.RFC3339)))); !slices.Equal(got, f.task[2:3]) {
		t.Errorf("Task?_lastUpdated=gt<after D> = %v, want %v", got, f.task[2:3])
	}
}

func linkURL(b *rpb.Bundle, rel string) string {
	for _, l := range b.GetLink() {
		if l.GetRelation().GetValue() == rel {
			return l.GetUrl().GetValue()
		}
	}
	return ""
}

func TestSearchPaging(t *testing.T) {
	t.Parallel()
	f := newSearchFixture(t)
	ts := f.ts

	p1 := ts.search("Task", vals("_count", "3", "status", "requested"))
	if p1.GetTotal().GetValue() != 4 || len(p1.GetEntry()) != 3 {
		t.Fatalf("page 1: total %d, %d entries; want 4, 3", p1.GetTotal().GetValue(), len(p1.GetEntry()))
	}
	if linkURL(p1, "self") == "" || linkURL(p1, "first") == "" {
		t.Errorf("page 1 links = %v, want self and first", p1.GetLink())
	}
	if linkURL(p1, "previous") != "" {
		t.Errorf("page 1 has a previous link")
	}
	next := linkURL(p1, "next")
	if next == "" {
		t.Fatalf("page 1 has no next link")
	}
	if u, err := url.Parse(next); err != nil || u.Query().Get("status") != "requested" || u.Query().Get("_count") != "3" {
		t.Errorf("next link %q lost the query (%v)", next, err)
	}
	p2 := bundle(t, ts.do(http.MethodGet, next, nil, nil), "searchset")
	if p2.GetTotal().GetValue() != 4 || len(p2.GetEntry()) != 1 {
		t.Fatalf("page 2: total %d, %d entries; want 4, 1", p2.GetTotal().GetValue(), len(p2.GetEntry()))
	}
	if linkURL(p2, "next") != "" {
		t.Errorf("last page has a next link: %s", linkURL(p2, "next"))
	}
	prev := linkURL(p2, "previous")
	if prev == "" {
		t.Fatalf("page 2 has no previous link")
	}
	all := append(matchIDs(p1), matchIDs(p2)...)
	if !slices.Equal(all, f.task[:]) {
		t.Errorf("pages 1+2 = %v, want %v (each Task once, in order)", all, f.task[:])
	}
	back := bundle(t, ts.do(http.MethodGet, prev, nil, nil), "searchset")
	if !slices.Equal(matchIDs(back), matchIDs(p1)) {
		t.Errorf("previous page = %v, want %v", matchIDs(back), matchIDs(p1))
	}

	// _count=0 still reports the total.
	z := ts.search("Task", vals("_count", "0"))
	if z.GetTotal().GetValue() != 4 {
		t.Errorf("_count=0 total = %d, want 4", z.GetTotal().GetValue())
	}
	// Beyond the last page: no entries, the total still right.
	far := ts.search("Task", vals("_count", "2", "_offset", "10"))
	if len(far.GetEntry()) != 0 || far.GetTotal().GetValue() != 4 {
		t.Errorf("_offset=10: %d entries, total %d; want 0, 4", len(far.GetEntry()), far.GetTotal().GetValue())
	}
	wantOutcome(t, ts.get("/Task?_count=-1"), http.StatusBadRequest, "invalid", "_count")
	wantOutcome(t, ts.get("/Task?_count=lots"), http.StatusBadRequest, "invalid", "_count")
	wantOutcome(t, ts.get("/Task?_lastUpdated=yesterday"), http.StatusBadRequest, "invalid", "_lastUpdated")
	wantOutcome(t, ts.get("/Task?_lastUpdated=sa2026-01-01"), http.StatusBadRequest, "invalid", "_lastUpdated")
	wantOutcome(t, ts.get("/Task?patient:missing=maybe"), http.StatusBadRequest, "invalid", "patient:missing")
	wantOutcome(t, ts.get("/Task?patient:contains=x"), http.StatusBadRequest, "invalid", "patient:contains")
	wantOutcome(t, ts.get("/MedicationRequest"), http.StatusNotFound, "not-found", "")
}

// TestSearchIncludeFocus: Task?_id=..&_include=Task:focus returns the Task
// and its ServiceRequest (search.mode include), docs/conformance.md §8.6.
func TestSearchIncludeFocus(t *testing.T) {
	t.Parallel()
	f := newSearchFixture(t)
	ts := f.ts
	b := ts.search("Task", vals("_id", idOf(f.task[0])+","+idOf(f.task[1]), "_include", "Task:focus"))
	if b.GetTotal().GetValue() != 2 {
		t.Errorf("total = %d, want 2 (includes are not counted)", b.GetTotal().GetValue())
	}
	var match, include []string
	for _, e := range b.GetEntry() {
		r := fhirmap.Unwrap(e.GetResource())
		ref := fhirmap.TypeName(r) + "/" + fhirmap.ID(r)
		switch fhirmap.Code(e.GetSearch().GetMode()) {
		case "match":
			match = append(match, ref)
		case "include":
			include = append(include, ref)
		default:
			t.Errorf("entry %s has search.mode %q", ref, fhirmap.Code(e.GetSearch().GetMode()))
		}
	}
	if !slices.Equal(match, f.task[:2]) {
		t.Errorf("match entries = %v, want %v", match, f.task[:2])
	}
	if !slices.Equal(include, f.sr[:2]) {
		t.Errorf("include entries = %v, want %v", include, f.sr[:2])
	}

	// Other includes: the patient; and a logical reference includes nothing.
	pb := ts.search("Task", vals("_id", idOf(f.task[0]), "_include", "Task:patient", "_include", "Task:owner"))
	var inc []string
	for _, e := range pb.GetEntry() {
		if fhirmap.Code(e.GetSearch().GetMode()) == "include" {
			r := fhirmap.Unwrap(e.GetResource())
			inc = append(inc, fhirmap.TypeName(r)+"/"+fhirmap.ID(r))
		}
	}
	if !slices.Equal(inc, f.patient[:1]) {
		t.Errorf("Task:patient,Task:owner includes = %v, want %v (owner is a logical ODS reference)", inc, f.patient[:1])
	}
	wantOutcome(t, ts.get("/Task?_include=Task:output"), http.StatusBadRequest, "invalid", "_include")
	wantOutcome(t, ts.get("/Task?_include=ServiceRequest:patient"), http.StatusBadRequest, "invalid", "_include")
}

// TestSearchGoalLifecycleStatus: Goal?lifecycle-status finds the goals in
// that state only. It used to be an unknown parameter, dropped, so that
// lifecycle-status=active answered completed and cancelled goals too.
func TestSearchGoalLifecycleStatus(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.intake(t, mustRead(t, fixReferralTxn))
	c.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: &linkbridge.LinkWorker{ID: "lw-1"}})
	p := journeyPlan()
	p.Goals = []linkbridge.Goal{
		{Description: "Walk", Importance: 5, Confidence: 5, Status: linkbridge.GoalActive},
		{Description: "Coffee", Importance: 5, Confidence: 5, Status: linkbridge.GoalAchieved},
		{Description: "Choir", Importance: 5, Confidence: 5, Status: linkbridge.GoalCancelled},
	}
	cv := c.write(http.MethodPut, "/plan", p, http.StatusOK)
	goal := func(i int) string { return "Goal/" + cv.Plan.Goals[i].ID }

	tests := []struct {
		name string
		q    url.Values
		want []string
	}{
		{"Active", vals("lifecycle-status", "active"), []string{goal(0)}},
		{"Completed", vals("lifecycle-status", "completed"), []string{goal(1)}},
		{"ActiveOrCancelled", vals("lifecycle-status", "active,cancelled"), []string{goal(0), goal(2)}},
		{"Proposed", vals("lifecycle-status", "proposed"), nil},
		{"Achieved", vals("achievement-status", "achieved"), []string{goal(1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := matchIDs(ts.search("Goal", tt.q))
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tt.want))
			if !slices.Equal(got, want) {
				t.Errorf("Goal?%s matches %v, want %v", tt.q.Encode(), got, want)
			}
		})
	}
}

// TestSearchFindsBaRSMessageTask: a referral that arrives as a BaRS
// message, whose requester and owner are Organization entries of the
// message, is found by the Task searches a GP system and a service poll
// with, like one made by transaction (docs/referral-exchange.md#search-parameters):
// requester:identifier with _lastUpdated, owner:identifier, focus and
// patient; and still after the service accepts it (the index is rebuilt
// from the stored Task, which carries the requester's ODS code).
func TestSearchFindsBaRSMessageTask(t *testing.T) {
	t.Parallel()
	f := newSearchFixture(t)
	ts := f.ts
	ods := linkbridge.ODSSystem + "|"
	since := "gt" + f.t0.Add(150*time.Minute).Format(time.RFC3339) // after C, before D
	searches := []struct {
		name string
		q    url.Values
	}{
		{"RequesterIdentifierSince", vals("requester:identifier", ods+msgReferrerODS, "_lastUpdated", since)},
		{"RequesterIdentifier", vals("requester:identifier", ods+msgReferrerODS)},
		{"OwnerIdentifier", vals("owner:identifier", ods+msgServiceODS)},
		{"OwnerIdentifierRequested", vals("owner:identifier", ods+msgServiceODS, "status", "requested")},
		{"Focus", vals("focus", f.sr[3])},
		{"Patient", vals("patient", f.patient[3])},
		{"PatientIdentifierChain", vals("patient.identifier", linkbridge.NHSNumberSystem+"|"+nhsMsgNew)},
	}
	check := func(stage string) {
		t.Helper()
		for _, s := range searches {
			t.Run(stage+"/"+s.name, func(t *testing.T) {
				if got := matchIDs(ts.search("Task", s.q)); !slices.Equal(got, f.task[3:4]) {
					t.Errorf("Task?%s matches %v, want the message's %v", s.q.Encode(), got, f.task[3:4])
				}
			})
		}
	}
	check("Received")
	// The stored Task names the organisations by reference and ODS code.
	task := ts.fhirDoc("/" + f.task[3])
	if str(task, "requester", "identifier", "value") != msgReferrerODS || str(task, "owner", "identifier", "value") != msgServiceODS {
		t.Errorf("stored Task requester %v, owner %v: want the ODS codes beside the references", task["requester"], task["owner"])
	}
	c := &spCase{t: t, ts: ts, ID: idOf(f.sr[3]), TaskID: idOf(f.task[3]), Version: 1, taskVersion: 1}
	c.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: &linkbridge.LinkWorker{ID: "lw-1"}})
	// Accepted, the Task's owner is the link worker, whatever the channel
	// (fhirmap.ApplyCaseToTask).
	searches[2].q = vals("owner:identifier", fhirmap.LinkWorkerSystem+"|lw-1")
	searches[3].q = vals("owner:identifier", fhirmap.LinkWorkerSystem+"|lw-1", "status", "accepted")
	check("Accepted")
}
