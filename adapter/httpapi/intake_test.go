package httpapi_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/httpapi"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
	"github.com/linkbridge/linkbridge/fhirmap"

	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	oopb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/operation_outcome_go_proto"
	srpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/service_request_go_proto"
	taskpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
)

var locationRE = regexp.MustCompile(`^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})/_history/([0-9]+)$`)

// parseLocation splits "Type/id/_history/n".
func parseLocation(t *testing.T, loc string) (typ, id, version string) {
	t.Helper()
	m := locationRE.FindStringSubmatch(loc)
	if m == nil {
		t.Fatalf("location %q is not Type/id/_history/n", loc)
	}
	return m[1], m[2], m[3]
}

func TestTransaction(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	received := ts.Clock.Now()
	resp := ts.post("", mustRead(t, fixReferralTxn), nil)
	b := bundle(t, resp, "transaction-response")
	if got := len(b.GetEntry()); got != 3 {
		t.Fatalf("transaction-response has %d entries, want 3 (one per request entry)", got)
	}
	wantTypes := []string{"Patient", "ServiceRequest", "Task"}
	ids := map[string]string{}
	for i, e := range b.GetEntry() {
		r := e.GetResponse()
		if got := r.GetStatus().GetValue(); !strings.HasPrefix(got, "201") {
			t.Errorf("entry %d response.status = %q, want 201 Created", i, got)
		}
		typ, id, v := parseLocation(t, r.GetLocation().GetValue())
		if typ != wantTypes[i] || v != "1" {
			t.Errorf("entry %d location = %q, want %s/<id>/_history/1", i, r.GetLocation().GetValue(), wantTypes[i])
		}
		if got := r.GetEtag().GetValue(); got != `W/"1"` {
			t.Errorf("entry %d etag = %q, want W/\"1\"", i, got)
		}
		if got := time.UnixMicro(r.GetLastModified().GetValueUs()); !got.Equal(received) {
			t.Errorf("entry %d lastModified = %v, want %v", i, got, received)
		}
		res := fhirmap.Unwrap(e.GetResource())
		if res == nil || fhirmap.ID(res) != id {
			t.Errorf("entry %d resource id = %q, want %q (the stored resource, Prefer: return=representation)", i, fhirmap.ID(res), id)
		}
		if got := e.GetFullUrl().GetValue(); got != ts.URL+"/"+typ+"/"+id {
			t.Errorf("entry %d fullUrl = %q, want %s/%s/%s", i, got, ts.URL, typ, id)
		}
		ids[typ] = id
	}

	// References between the new resources were rewritten to the new ids.
	task := entryResource[*taskpb.Task](t, b)
	if typ, id := fhirmap.RefTarget(task.GetFocus()); typ != "ServiceRequest" || id != ids["ServiceRequest"] {
		t.Errorf("Task.focus = %s/%s, want ServiceRequest/%s", typ, id, ids["ServiceRequest"])
	}
	if typ, id := fhirmap.RefTarget(task.GetForValue()); typ != "Patient" || id != ids["Patient"] {
		t.Errorf("Task.for = %s/%s, want Patient/%s", typ, id, ids["Patient"])
	}
	sr := entryResource[*srpb.ServiceRequest](t, b)
	if typ, id := fhirmap.RefTarget(sr.GetSubject()); typ != "Patient" || id != ids["Patient"] {
		t.Errorf("ServiceRequest.subject = %s/%s, want Patient/%s", typ, id, ids["Patient"])
	}

	// Each resource reads back with ETag, Last-Modified and meta.
	for typ, id := range ids {
		r := ts.get("/" + typ + "/" + id)
		wantStatus(t, r, http.StatusOK)
		if got := r.Header.Get("ETag"); got != `W/"1"` {
			t.Errorf("GET %s/%s ETag = %q, want W/\"1\"", typ, id, got)
		}
		lm, err := http.ParseTime(r.Header.Get("Last-Modified"))
		if err != nil || !lm.Equal(received.Truncate(time.Second)) {
			t.Errorf("GET %s/%s Last-Modified = %q, want %s", typ, id, r.Header.Get("Last-Modified"), received.Format(http.TimeFormat))
		}
		meta := fhirmap.GetMeta(r.Resource)
		if meta.GetVersionId().GetValue() != "1" {
			t.Errorf("GET %s/%s meta.versionId = %q, want 1", typ, id, meta.GetVersionId().GetValue())
		}
		if got := time.UnixMicro(meta.GetLastUpdated().GetValueUs()); !got.Equal(received) {
			t.Errorf("GET %s/%s meta.lastUpdated = %v, want %v", typ, id, got, received)
		}
		if fhirmap.TypeName(r.Resource) != typ || fhirmap.ID(r.Resource) != id {
			t.Errorf("GET %s/%s returned %s/%s", typ, id, fhirmap.TypeName(r.Resource), fhirmap.ID(r.Resource))
		}

		// vread
		vr := ts.get("/" + typ + "/" + id + "/_history/1")
		wantStatus(t, vr, http.StatusOK)
		if vr.Header.Get("ETag") != `W/"1"` || string(vr.Body) != string(r.Body) {
			t.Errorf("vread %s/%s/_history/1: ETag %q, body differs from read: %v", typ, id, vr.Header.Get("ETag"), string(vr.Body) != string(r.Body))
		}
		wantOutcome(t, ts.get("/"+typ+"/"+id+"/_history/2"), http.StatusNotFound, "not-found", "")

		// history
		hb := bundle(t, ts.get("/"+typ+"/"+id+"/_history"), "history")
		if hb.GetTotal().GetValue() != 1 || len(hb.GetEntry()) != 1 {
			t.Errorf("history of %s/%s: total %d, %d entries; want 1, 1", typ, id, hb.GetTotal().GetValue(), len(hb.GetEntry()))
		}

		// If-None-Match with the current ETag: 304.
		nm := ts.do(http.MethodGet, "/"+typ+"/"+id, nil, hdr{"If-None-Match": `W/"1"`})
		wantStatus(t, nm, http.StatusNotModified)
	}

	// The Task is the SDOH referral Task as sent.
	tr := ts.get("/Task/" + ids["Task"]).Resource.(*taskpb.Task)
	if fhirmap.TaskStatusOf(tr) != linkbridge.TaskRequested || fhirmap.Code(tr.GetIntent()) != "order" {
		t.Errorf("Task status/intent = %s/%s, want requested/order", fhirmap.TaskStatusOf(tr), fhirmap.Code(tr.GetIntent()))
	}
	if tr.GetLastModified() == nil {
		t.Errorf("Task.lastModified not set")
	}
}

func TestTransactionResendIsIdempotent(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	body := mustRead(t, fixReferralTxn)
	first := bundle(t, ts.post("", body, nil), "transaction-response")
	ts.Clock.Set(ts.Clock.Now().Add(time.Hour))
	second := bundle(t, ts.post("", body, nil), "transaction-response")

	if len(first.GetEntry()) != len(second.GetEntry()) {
		t.Fatalf("entries: first %d, second %d", len(first.GetEntry()), len(second.GetEntry()))
	}
	for i := range first.GetEntry() {
		l1 := first.GetEntry()[i].GetResponse().GetLocation().GetValue()
		r2 := second.GetEntry()[i].GetResponse()
		if got := r2.GetStatus().GetValue(); !strings.HasPrefix(got, "200") {
			t.Errorf("re-send entry %d status = %q, want 200 OK", i, got)
		}
		if got := r2.GetLocation().GetValue(); got != l1 {
			t.Errorf("re-send entry %d location = %q, want the first %q", i, got, l1)
		}
	}
	c := ts.counts()
	if c.ServiceRequest != 1 || c.Task != 1 || c.Patient != 1 {
		t.Errorf("after re-send: %+v, want one Patient, ServiceRequest and Task", c)
	}
	if n := ts.total("ServiceRequest", vals("identifier", referralIDSys+"|"+referralTxnID)); n != 1 {
		t.Errorf("ServiceRequest?identifier total = %d, want 1", n)
	}
}

// TestSecondReferralForSamePersonKeepsOwnPatient: a second referral of
// a known person (same NHS number) is linked to the same person
// internally, but stores its own Patient — what its referrer sent — and
// answers it 201 Created like any new resource: the answer does not tell
// whether the person was known (docs/referral-exchange.md#disclosure).
func TestSecondReferralForSamePersonKeepsOwnPatient(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	first := bundle(t, ts.post("", mustRead(t, fixReferralTxn), nil), "transaction-response")
	srID := func(b *rpb.Bundle) string {
		_, id, _ := parseLocation(t, b.GetEntry()[1].GetResponse().GetLocation().GetValue())
		return id
	}
	// Open beside the first, as its sender says (docs/domain.md#one-open-referral).
	second := bundle(t, ts.post("", following(t, sameIdentifierPerson(t, mustRead(t, fixReferralTxn), "second-referral"), srID(first)), nil), "transaction-response")
	p1 := first.GetEntry()[0].GetResponse()
	p2 := second.GetEntry()[0].GetResponse()
	if p2.GetLocation().GetValue() == p1.GetLocation().GetValue() || p2.GetStatus().GetValue() != p1.GetStatus().GetValue() || !strings.HasPrefix(p2.GetStatus().GetValue(), "201") {
		t.Errorf("second referral Patient entry = %s %s, want 201 and a Patient of its own (the first is %s %s)",
			p2.GetStatus().GetValue(), p2.GetLocation().GetValue(), p1.GetStatus().GetValue(), p1.GetLocation().GetValue())
	}
	if got := second.GetEntry()[1].GetResponse().GetStatus().GetValue(); !strings.HasPrefix(got, "201") {
		t.Errorf("second referral ServiceRequest status = %q, want 201", got)
	}
	c := ts.counts()
	if c.Patient != 2 || c.ServiceRequest != 2 || c.Task != 2 {
		t.Errorf("counts = %+v, want 2 Patients, 2 ServiceRequests, 2 Tasks", c)
	}
	for _, b := range []*rpb.Bundle{first, second} {
		_, pid, _ := parseLocation(t, b.GetEntry()[0].GetResponse().GetLocation().GetValue())
		if n := ts.total("Task", vals("patient", "Patient/"+pid)); n != 1 {
			t.Errorf("Task?patient=Patient/%s total = %d, want its own referral's 1", pid, n)
		}
	}
	// One person internally: both referrals are the same person's.
	page := ts.inbox(t, "")
	if len(page.Items) != 2 || page.Items[0].PersonID != page.Items[1].PersonID || page.Items[0].PatientID == page.Items[1].PatientID {
		t.Errorf("referrals = %+v, want one person with two Patients", page.Items)
	}
}

func TestCreateServiceRequestCreatesTask(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	resp := ts.post("/ServiceRequest", mustRead(t, fixSRContained), nil)
	wantStatus(t, resp, http.StatusCreated)
	typ, id, v := parseLocation(t, resp.Header.Get("Location"))
	if typ != "ServiceRequest" || v != "1" || resp.Header.Get("ETag") != `W/"1"` {
		t.Errorf("Location %q ETag %q, want ServiceRequest/<id>/_history/1 and W/\"1\"", resp.Header.Get("Location"), resp.Header.Get("ETag"))
	}
	sr, ok := resp.Resource.(*srpb.ServiceRequest)
	if !ok || fhirmap.ID(sr) != id {
		t.Fatalf("body is %T id %q, want the ServiceRequest %s", resp.Resource, fhirmap.ID(resp.Resource), id)
	}
	// The contained Patient stays contained; the person is also a Patient
	// resource of their own, found by NHS number.
	pats := ts.search("Patient", vals("identifier", linkbridge.NHSNumberSystem+"|"+nhsSRContained))
	if got := len(matchIDs(pats)); got != 1 {
		t.Fatalf("Patient?identifier=<nhs> matched %d, want 1", got)
	}

	// The gateway created the SDOH referral Task.
	tb := ts.search("Task", vals("focus", "ServiceRequest/"+id))
	if tb.GetTotal().GetValue() != 1 {
		t.Fatalf("Task?focus=ServiceRequest/%s total = %d, want 1", id, tb.GetTotal().GetValue())
	}
	task := entryResource[*taskpb.Task](t, tb)
	if got := fhirmap.TaskStatusOf(task); got != linkbridge.TaskRequested {
		t.Errorf("Task.status = %q, want requested", got)
	}
	if got := fhirmap.Code(task.GetIntent()); got != "order" {
		t.Errorf("Task.intent = %q, want order", got)
	}
	c := task.GetCode().GetCoding()
	if len(c) == 0 || c[0].GetSystem().GetValue() != fhirmap.TaskCodeSystem || c[0].GetCode().GetValue() != "fulfill" {
		t.Errorf("Task.code = %v, want task-code#fulfill", c)
	}
	if typ, pid := fhirmap.RefTarget(task.GetForValue()); typ != "Patient" || "Patient/"+pid != matchIDs(pats)[0] {
		t.Errorf("Task.for = %s/%s, want %s", typ, pid, matchIDs(pats)[0])
	}
	if got := task.GetOwner().GetIdentifier().GetValue().GetValue(); got != "Y03010" {
		t.Errorf("Task.owner ODS = %q, want Y03010 (ServiceRequest.performer)", got)
	}
	if got := task.GetRequester().GetIdentifier().GetValue().GetValue(); got != "F84003" {
		t.Errorf("Task.requester ODS = %q, want F84003", got)
	}
	// Both search forms of focus work: bare id and absolute URL.
	if n := ts.total("Task", vals("focus", id)); n != 1 {
		t.Errorf("Task?focus=<id> total = %d, want 1", n)
	}
	if n := ts.total("Task", vals("focus", ts.URL+"/ServiceRequest/"+id)); n != 1 {
		t.Errorf("Task?focus=<absolute URL> total = %d, want 1", n)
	}
}

func TestCreateServiceRequestByNHSNumberOnly(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	resp := ts.post("/ServiceRequest", mustRead(t, fixSRByNHS), nil)
	wantStatus(t, resp, http.StatusCreated)
	// The gateway keeps a minimal Patient for a person named only by NHS
	// number, and the referral Task points at it.
	pb := ts.search("Patient", vals("identifier", linkbridge.NHSNumberSystem+"|9990395969"))
	if pb.GetTotal().GetValue() != 1 {
		t.Fatalf("Patient?identifier total = %d, want 1", pb.GetTotal().GetValue())
	}
	srID := fhirmap.ID(resp.Resource)
	task := entryResource[*taskpb.Task](t, ts.search("Task", vals("focus", "ServiceRequest/"+srID)))
	if typ, pid := fhirmap.RefTarget(task.GetForValue()); "Patient/"+pid != matchIDs(pb)[0] || typ != "Patient" {
		t.Errorf("Task.for = %s/%s, want %s", typ, pid, matchIDs(pb)[0])
	}
}

// TestServiceRequestSearchByPatient: ServiceRequest?patient= is a MUST of
// the SDOH server CapabilityStatements (docs/conformance.md row 18), whatever
// shape the referral arrived in.
func TestServiceRequestSearchByPatient(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, tc := range []struct{ name, file, nhs string }{
		{"Transaction", fixReferralTxn, nhsReferralTxn},
		{"SubjectByNHSNumber", fixSRByNHS, "9990395969"},
		{"ContainedPatient", fixSRContained, nhsSRContained},
	} {
		path := "/ServiceRequest"
		if tc.file == fixReferralTxn {
			path = ""
		}
		r := ts.post(path, mustRead(t, tc.file), nil)
		if r.Status != http.StatusOK && r.Status != http.StatusCreated {
			t.Fatalf("%s: POST = %d: %s", tc.name, r.Status, r.Body)
		}
		pid := matchIDs(ts.search("Patient", vals("identifier", linkbridge.NHSNumberSystem+"|"+tc.nhs)))
		if len(pid) != 1 {
			t.Fatalf("%s: Patient?identifier matched %v", tc.name, pid)
		}
		if n := ts.total("ServiceRequest", vals("patient", pid[0])); n != 1 {
			t.Errorf("BUG %s: ServiceRequest?patient=%s total = %d, want 1 (ServiceRequest.subject is not repointed at the stored Patient)", tc.name, pid[0], n)
		}
		if n := ts.total("Task", vals("patient", pid[0])); n != 1 {
			t.Errorf("%s: Task?patient=%s total = %d, want 1", tc.name, pid[0], n)
		}
	}
}

func TestConditionalCreate(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	body := mustRead(t, fixSRContained)
	cond := hdr{"If-None-Exist": "identifier=" + referralIDSys + "|" + srContainedID}

	first := ts.post("/ServiceRequest", body, cond)
	wantStatus(t, first, http.StatusCreated)
	ts.Clock.Set(ts.Clock.Now().Add(time.Minute))
	second := ts.post("/ServiceRequest", body, cond)
	wantStatus(t, second, http.StatusOK)
	if second.Header.Get("Location") != first.Header.Get("Location") {
		t.Errorf("If-None-Exist match Location = %q, want the existing %q", second.Header.Get("Location"), first.Header.Get("Location"))
	}
	if fhirmap.ID(second.Resource) != fhirmap.ID(first.Resource) {
		t.Errorf("If-None-Exist match returned %s, want %s", fhirmap.ID(second.Resource), fhirmap.ID(first.Resource))
	}
	// Without If-None-Exist the business identifier de-duplicates too.
	third := ts.post("/ServiceRequest", body, nil)
	wantStatus(t, third, http.StatusOK)
	if fhirmap.ID(third.Resource) != fhirmap.ID(first.Resource) {
		t.Errorf("re-POST returned %s, want %s", fhirmap.ID(third.Resource), fhirmap.ID(first.Resource))
	}
	if n := ts.total("ServiceRequest", nil); n != 1 {
		t.Errorf("ServiceRequest total = %d, want 1", n)
	}
	if n := ts.total("Task", nil); n != 1 {
		t.Errorf("Task total = %d, want 1", n)
	}

	// A condition that matches nothing creates.
	other := withIdentifier(t, body, "F84003-2026-000113")
	fourth := ts.post("/ServiceRequest", other, hdr{"If-None-Exist": "identifier=" + referralIDSys + "|F84003-2026-000113"})
	wantStatus(t, fourth, http.StatusCreated)
	if n := ts.total("ServiceRequest", nil); n != 2 {
		t.Errorf("ServiceRequest total = %d, want 2", n)
	}
}

// TestConditionalCreateUnappliedCriteria: an If-None-Exist whose criteria
// the server cannot fully apply is refused (400 naming the parameter), not
// run with the criteria dropped, which matched the one stored referral and
// answered "already exists" for a different one.
func TestConditionalCreateUnappliedCriteria(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	wantStatus(t, ts.post("/ServiceRequest", mustRead(t, fixSRContained), nil), http.StatusCreated)
	other := withIdentifier(t, mustRead(t, fixSRContained), "F84003-2026-000113")
	tests := []struct{ cond, expr string }{
		{"foo=bar", "foo"},
		{"9434765919=1", "9434765919"},
		{"status=active&foo=bar", "foo"},
		{"patient.identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919", "patient.identifier"},
		{"_count=1", "_count"},
		{"_include=ServiceRequest:subject", "_include"},
		{"identifier=", "identifier"},
		{"identifier=,", "identifier"},
		{"&", "If-None-Exist"},
		{"identifier:text=x", "identifier:text"},
		{"subject:Patient.identifier=x", "subject:Patient.identifier"},
	}
	for _, tt := range tests {
		r := ts.post("/ServiceRequest", other, hdr{"If-None-Exist": tt.cond})
		if r.Status != http.StatusBadRequest {
			t.Errorf("If-None-Exist %q: %d, want 400; body: %s", tt.cond, r.Status, r.Body)
			continue
		}
		wantOutcome(t, r, http.StatusBadRequest, "invalid", tt.expr)
	}
	if n := ts.total("ServiceRequest", nil); n != 1 {
		t.Errorf("ServiceRequest total = %d, want 1 (refused conditions create nothing)", n)
	}
	// Criteria it applies still work: a match answers with the stored one,
	// none creates.
	wantStatus(t, ts.post("/ServiceRequest", other, hdr{"If-None-Exist": "identifier=" + referralIDSys + "|F84003-2026-000113&status=active"}), http.StatusCreated)
	if n := ts.total("ServiceRequest", nil); n != 2 {
		t.Errorf("ServiceRequest total = %d, want 2", n)
	}
	wantStatus(t, ts.post("/ServiceRequest", other, hdr{"If-None-Exist": "_id=nope,also-nope&identifier=" + referralIDSys + "|F84003-2026-000113"}), http.StatusOK)
	if n := ts.total("ServiceRequest", nil); n != 2 {
		t.Errorf("ServiceRequest total = %d, want 2", n)
	}
}

// unfindableReferrals is a store whose referrals cannot be found by
// identifier, as happens when the store reports a duplicate identifier
// that the caller's view of it does not hold.
type unfindableReferrals struct{ *sqlite.DB }

func (unfindableReferrals) FindReferralByIdentifier(context.Context, string, linkbridge.Identifier) (*linkbridge.Referral, error) {
	return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "referral not found")
}

// TestIntakeDuplicateNotFound: a referral whose identifier the store holds
// but cannot then find answers 409, never a nil result the handlers would
// dereference.
func TestIntakeDuplicateNotFound(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(s *httpapi.Server) { s.Store = unfindableReferrals{s.Store.(*sqlite.DB)} })
	body := mustRead(t, fixSRContained)
	wantStatus(t, ts.post("/ServiceRequest", body, nil), http.StatusCreated)
	wantOutcome(t, ts.post("/ServiceRequest", body, nil), http.StatusConflict, "conflict", "ServiceRequest.identifier")
	wantStatus(t, ts.post("", mustRead(t, fixReferralTxn), nil), http.StatusOK) // another referral still goes in
}

func TestCreateTaskWithContainedServiceRequest(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	resp := ts.post("/Task", mustRead(t, fixTaskContained), nil)
	wantStatus(t, resp, http.StatusCreated)
	typ, id, _ := parseLocation(t, resp.Header.Get("Location"))
	if typ != "Task" {
		t.Fatalf("Location = %q, want a Task", resp.Header.Get("Location"))
	}
	task := resp.Resource.(*taskpb.Task)
	if fhirmap.ID(task) != id || fhirmap.TaskStatusOf(task) != linkbridge.TaskRequested {
		t.Errorf("Task %s status %s, want %s requested", fhirmap.ID(task), fhirmap.TaskStatusOf(task), id)
	}
	pb := ts.search("Patient", vals("identifier", linkbridge.NHSNumberSystem+"|9990237581"))
	if pb.GetTotal().GetValue() != 1 {
		t.Fatalf("Patient?identifier (normalised from 999-023-7581) total = %d, want 1", pb.GetTotal().GetValue())
	}
	patientRef := matchIDs(pb)[0]
	if n := ts.total("Task", vals("patient", patientRef)); n != 1 {
		t.Errorf("Task?patient=%s total = %d, want 1", patientRef, n)
	}
	if n := ts.total("Task", vals("owner:identifier", linkbridge.ODSSystem+"|Y05320")); n != 1 {
		t.Errorf("Task?owner:identifier=Y05320 total = %d, want 1", n)
	}

	// The referral's ServiceRequest is a resource of its own (its id is the
	// referral id), so it can be searched, read, revoked and found again.
	srb := ts.search("ServiceRequest", vals("identifier", referralIDSys+"|"+taskContainedID))
	if srb.GetTotal().GetValue() != 1 {
		t.Errorf("BUG: ServiceRequest?identifier=%s total = %d, want 1: a ServiceRequest contained in a POSTed Task is never stored as a resource", taskContainedID, srb.GetTotal().GetValue())
	} else if srID := matchIDs(srb)[0]; ts.total("Task", vals("focus", srID)) != 1 {
		t.Errorf("Task?focus=%s total != 1", srID)
	}

	// A second POST of the same Task is the same referral.
	again := ts.post("/Task", mustRead(t, fixTaskContained), nil)
	if again.Status != http.StatusOK || fhirmap.ID(again.Resource) != id {
		t.Errorf("BUG: re-POST /Task = %d %s, want 200 with Task %s; body: %s", again.Status, fhirmap.ID(again.Resource), id, again.Body)
	}
	if n := ts.total("Task", nil); n != 1 {
		t.Errorf("Task total = %d, want 1", n)
	}
}

func TestCreateTaskForHeldReferral(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	sr := ts.post("/ServiceRequest", mustRead(t, fixSRContained), nil)
	wantStatus(t, sr, http.StatusCreated)
	srID := fhirmap.ID(sr.Resource)
	tb := ts.search("Task", vals("focus", "ServiceRequest/"+srID))
	taskID := matchIDs(tb)[0]

	// A Task whose focus is a ServiceRequest the gateway holds answers with
	// the referral's Task; nothing new is created.
	d := mustParseJSON(t, mustRead(t, fixTaskContained))
	delete(d, "contained")
	d["focus"] = jsonDoc{"reference": "ServiceRequest/" + srID}
	d["for"] = jsonDoc{"reference": "Patient/whoever"}
	held := ts.post("/Task", mustJSON(t, d), nil)
	wantStatus(t, held, http.StatusOK)
	if "Task/"+fhirmap.ID(held.Resource) != taskID {
		t.Errorf("POST /Task for a held referral returned Task/%s, want %s", fhirmap.ID(held.Resource), taskID)
	}
	// A focus the gateway does not hold is refused, naming Task.focus.
	d["focus"] = jsonDoc{"reference": "ServiceRequest/not-held"}
	before := ts.counts()
	wantOutcome(t, ts.post("/Task", mustJSON(t, d), nil), http.StatusUnprocessableEntity, "processing", "Task.focus")
	if after := ts.counts(); after != before {
		t.Errorf("refused POST /Task stored something: %+v → %+v", before, after)
	}
}

func TestPreferReturn(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)

	minimal := ts.post("/ServiceRequest", mustRead(t, fixSRContained), hdr{"Prefer": "return=minimal"})
	wantStatus(t, minimal, http.StatusCreated)
	if len(minimal.Body) != 0 {
		t.Errorf("Prefer: return=minimal body = %q, want empty", minimal.Body)
	}
	if minimal.Header.Get("Location") == "" || minimal.Header.Get("ETag") == "" {
		t.Errorf("Prefer: return=minimal lost Location/ETag: %v", minimal.Header)
	}

	oo := ts.post("/ServiceRequest", withIdentifier(t, mustRead(t, fixSRContained), "F84003-2026-000999"), hdr{"Prefer": "return=OperationOutcome"})
	wantStatus(t, oo, http.StatusCreated)
	o := wantOutcomeInfo(t, oo)
	if len(o) == 0 {
		t.Errorf("Prefer: return=OperationOutcome gave no information issue: %s", oo.Body)
	}

	txn := ts.post("", mustRead(t, fixReferralTxn), hdr{"Prefer": "return=minimal"})
	b := bundle(t, txn, "transaction-response")
	for i, e := range b.GetEntry() {
		if e.GetResource() != nil && fhirmap.Unwrap(e.GetResource()) != nil {
			t.Errorf("transaction entry %d carries a resource under return=minimal", i)
		}
		if e.GetResponse().GetLocation().GetValue() == "" {
			t.Errorf("transaction entry %d has no location", i)
		}
	}
}

// wantOutcomeInfo returns the diagnostics of the information issues of an
// OperationOutcome body.
func wantOutcomeInfo(t *testing.T, r *response) []string {
	t.Helper()
	oo, ok := r.Resource.(*oopb.OperationOutcome)
	if !ok {
		t.Fatalf("body is %T, want OperationOutcome: %s", r.Resource, r.Body)
	}
	var out []string
	for _, is := range oo.GetIssue() {
		if fhirmap.Code(is.GetSeverity()) == "information" {
			out = append(out, is.GetDiagnostics().GetValue())
		}
	}
	return out
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	r := ts.get("/metadata")
	wantStatus(t, r, http.StatusOK)
	if got := fhirmap.TypeName(r.Resource); got != "CapabilityStatement" {
		t.Fatalf("GET /metadata returned %s", got)
	}
	for _, want := range []string{`"Task"`, `"ServiceRequest"`, `"process-message"`, `"4.0.1"`} {
		if !strings.Contains(string(r.Body), want) {
			t.Errorf("CapabilityStatement does not mention %s", want)
		}
	}
}
