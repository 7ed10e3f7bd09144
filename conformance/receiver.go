package conformance

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// receiverScenarios are the docs/conformance.md scenarios for a system that
// receives referrals; the kit plays the GP system.
func receiverScenarios() []Scenario {
	s := []Scenario{
		{"capability-statement", "CapabilityStatement at /metadata", "FHIR R4 capabilities; docs/referral-exchange.md#capabilitystatement", scCapability},
		{"transaction-referral", "referral as a transaction Bundle", "docs/conformance.md §8.1", scTransaction},
		{"task-referral", "SDOH referral Task with its ServiceRequest (POST Task)", "docs/conformance.md §8.1", scTaskReferral},
		{"servicerequest-referral", "ServiceRequest on its own; the receiver creates the Task", "docs/conformance.md §8.1", scServiceRequest},
		{"bars-message", "BaRS referral message, then its replay", "docs/conformance.md §8.2, §8.3", scBaRSMessage},
		{"duplicate-referral", "the same referral twice creates one", "docs/conformance.md §8.3", scDuplicate},
		{"conditional-create", "If-None-Exist on the referral identifier", "docs/conformance.md §8.3", scConditionalCreate},
		{"missing-headers", "BaRS message without X-Correlation-Id", "docs/conformance.md §8.4", scMissingHeaders},
	}
	for _, ic := range invalidCases {
		ic := ic
		s = append(s, Scenario{"invalid-" + ic.id, "refused: " + ic.name, "docs/conformance.md §8.5", func(t *T) { scInvalid(t, ic) }})
	}
	return append(s,
		Scenario{"accept", "link worker accepts; the GP sees it (read, _include, polling)", "docs/conformance.md §8.6; docs/referral-exchange.md#polling-and-subscriptions", scAccept},
		Scenario{"reject", "link worker declines; the terminal Task refuses changes", "docs/conformance.md §8.7", scReject},
		Scenario{"progress-complete", "in-progress, on-hold, resume, complete: each a new version", "docs/conformance.md §8.8, §8.9", scProgress},
		Scenario{"illegal-transition", "requested → completed by the GP is refused", "docs/conformance.md §8.8; docs/referral-exchange.md#task-states", scIllegal},
		Scenario{"gp-cancel", "GP cancels with If-Match; a stale version is 412", "docs/conformance.md §8.10", scCancel},
		Scenario{"bars-cancel", "GP cancels by BaRS message (ServiceRequest revoked)", "docs/conformance.md §8.10", scBaRSCancel},
		Scenario{"concurrent-update", "two updates with the same If-Match: one wins", "docs/conformance.md §8.11", scConcurrent},
		Scenario{"light-recipient-poll", "a recipient without a FHIR server polls for new referrals", "docs/conformance.md §8.12; docs/referral-exchange.md#polling-and-subscriptions", scPoll},
		Scenario{"search-include", "Task search by id list, patient NHS number, _include=Task:focus", "SDOH task-7; docs/conformance.md#search-sdoh-task-7", scSearch},
		Scenario{"subscription-lifecycle", "Subscription (backport, SDOH Task topic, id-only rest-hook): handshake, events in order, heartbeat, $status, $events, delete", "docs/conformance.md §8.13; docs/subscriptions.md", scSubscription},
	)
}

func scCapability(t *T) {
	r := t.Do(Request{Method: http.MethodGet, URL: "metadata"})
	t.ExpectStatus(r, http.StatusOK)
	t.Check(r.Doc.Str("resourceType") == "CapabilityStatement", "GET /metadata answers a CapabilityStatement")
	t.Check(r.Doc.Str("fhirVersion") == "4.0.1", "fhirVersion is 4.0.1 (got %q)", r.Doc.Str("fhirVersion"))
	has := map[string]bool{}
	for _, rest := range r.Doc.List("rest") {
		for _, res := range rest.List("resource") {
			has[res.Str("type")] = true
		}
	}
	t.Check(has["Task"] && has["ServiceRequest"], "the CapabilityStatement lists Task and ServiceRequest")
}

// sendTransaction posts the transaction referral and records the target's
// Task and ServiceRequest ids.
func sendTransaction(t *T, r *referral) *Response {
	resp := t.Do(Request{Method: http.MethodPost, URL: t.kit.cfg.Target, Body: t.kit.fixture("transaction.json", r)})
	t.ExpectStatus(resp, http.StatusOK)
	if resp.Doc.Str("type") != "transaction-response" {
		t.Fatalf("expected a transaction-response Bundle, got type %q", resp.Doc.Str("type"))
	}
	for _, e := range resp.Doc.List("entry") {
		typ, id, _ := parseLocation(e.Obj("response").Str("location"))
		switch typ {
		case "Task":
			r.TaskID = id
		case "ServiceRequest":
			r.SRID = id
		}
	}
	if r.TaskID == "" || r.SRID == "" {
		t.Fatalf("the transaction-response does not give the Location of the Task and the ServiceRequest")
	}
	return resp
}

// newTransactionReferral sends a fresh referral and checks it is requested.
func newTransactionReferral(t *T) *referral {
	r := t.kit.newReferral()
	sendTransaction(t, r)
	task := getTask(t, r)
	t.Check(task.Doc.Str("status") == "requested", "the new referral Task is requested (got %q)", task.Doc.Str("status"))
	return r
}

func getTask(t *T, r *referral) *Response {
	resp := t.Do(Request{Method: http.MethodGet, URL: "Task/" + r.TaskID})
	t.ExpectStatus(resp, http.StatusOK)
	return resp
}

// waitTask polls the Task until it has the status (a receiver may update
// it asynchronously), for up to 15 s.
func waitTask(t *T, r *referral, want string) *Response {
	deadline := time.Now().Add(15 * time.Second)
	for {
		task := getTask(t, r)
		if task.Doc.Str("status") == want {
			return task
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Task did not become %q (it is %q)", want, task.Doc.Str("status"))
		}
		time.Sleep(t.kit.cfg.PollInterval)
	}
}

func versionOf(resp *Response) string {
	return resp.Doc.Obj("meta").Str("versionId")
}

// countReferrals counts ServiceRequests with the referral identifier.
func countReferrals(t *T, ref string) int {
	resp := t.Do(Request{Method: http.MethodGet, URL: "ServiceRequest?identifier=" + url.QueryEscape(ReferralSystem+"|"+ref)})
	t.ExpectStatus(resp, http.StatusOK)
	n := 0
	for _, e := range resp.Doc.List("entry") {
		if e.Obj("resource").Str("resourceType") == "ServiceRequest" {
			n++
		}
	}
	return n
}

func scTransaction(t *T) {
	r := t.kit.newReferral()
	resp := sendTransaction(t, r)
	for _, e := range resp.Doc.List("entry") {
		st := e.Obj("response").Str("status")
		t.Check(strings.HasPrefix(st, "201") || strings.HasPrefix(st, "200"), "entry %s answered %q", e.Obj("response").Str("location"), st)
	}
	task := getTask(t, r)
	t.Check(task.Header.Get("ETag") != "", "GET Task answers an ETag")
	t.Check(task.Doc.Str("status") == "requested", "Task.status is requested (got %q)", task.Doc.Str("status"))
	t.Check(task.Doc.Str("intent") == "order", "Task.intent is order (got %q)", task.Doc.Str("intent"))
	t.Check(strings.Contains(string(task.Body), `"fulfill"`), "Task.code is fulfill")
	t.Check(refID(task.Doc.Obj("focus"), "ServiceRequest") == r.SRID, "Task.focus is the ServiceRequest")
	t.Check(countReferrals(t, r.Ref) == 1, "exactly one ServiceRequest carries the referral identifier")
}

func scTaskReferral(t *T) {
	r := t.kit.newReferral()
	resp := t.Do(Request{Method: http.MethodPost, URL: "Task", Body: t.kit.fixture("task-direct.json", r)})
	t.ExpectStatus(resp, http.StatusCreated)
	typ, id, v := parseLocation(resp.Header.Get("Location"))
	t.Check(typ == "Task" && id != "" && v == "1", "Location is Task/{id}/_history/1 (got %q)", resp.Header.Get("Location"))
	t.Check(resp.Header.Get("ETag") == `W/"1"`, `ETag is W/"1" (got %q)`, resp.Header.Get("ETag"))
	r.TaskID = id
	task := getTask(t, r)
	t.Check(task.Doc.Str("status") == "requested" && task.Doc.Str("intent") == "order", "the Task reads back requested / order")
	t.Check(countReferrals(t, r.Ref) == 1, "the referral's ServiceRequest is held once, with the referrer's identifier")
}

func scServiceRequest(t *T) {
	r := t.kit.newReferral()
	resp := t.Do(Request{Method: http.MethodPost, URL: "ServiceRequest", Body: t.kit.fixture("servicerequest.json", r)})
	t.ExpectStatus(resp, http.StatusCreated)
	_, id, _ := parseLocation(resp.Header.Get("Location"))
	t.Check(id != "", "Location names the new ServiceRequest")
	tasks := t.Do(Request{Method: http.MethodGet, URL: "Task?focus=" + url.QueryEscape("ServiceRequest/"+id)})
	t.ExpectStatus(tasks, http.StatusOK)
	n := 0
	for _, e := range tasks.Doc.List("entry") {
		if res := e.Obj("resource"); res.Str("resourceType") == "Task" {
			n++
			t.Check(res.Str("status") == "requested", "the receiver's Task is requested")
		}
	}
	t.Check(n == 1, "exactly one Task tracks the ServiceRequest (found %d)", n)
}

// barsHeaders are the BaRS transport headers.
func barsHeaders(reqID, corrID string) map[string]string {
	return map[string]string{"X-Request-Id": reqID, "X-Correlation-Id": corrID}
}

func scBaRSMessage(t *T) {
	r := t.kit.newReferral()
	body := t.kit.fixture("message-new.json", r)
	reqID, corrID := uuid.NewString(), uuid.NewString()
	start := time.Now()
	resp := t.Do(Request{Method: http.MethodPost, URL: "$process-message", Body: body, Header: barsHeaders(reqID, corrID)})
	elapsed := time.Since(start)
	t.ExpectStatus(resp, http.StatusOK)
	t.Check(resp.Header.Get("X-Request-Id") == reqID && resp.Header.Get("X-Correlation-Id") == corrID, "X-Request-Id and X-Correlation-Id are echoed")
	t.Check(resp.Doc.Str("type") == "message", "the answer is a message Bundle (got type %q)", resp.Doc.Str("type"))
	t.Check(elapsed < 5*time.Second, "processed within the BaRS 5 s maximum (%s)", elapsed.Round(time.Millisecond))
	t.Check(countReferrals(t, r.Ref) == 1, "the referral is held")
	replay := t.Do(Request{Method: http.MethodPost, URL: "$process-message", Body: body, Header: barsHeaders(reqID, corrID)})
	t.ExpectOutcome(replay, 409, 409, "")
	dup := false
	for _, is := range replay.Doc.List("issue") {
		dup = dup || is.Str("code") == "duplicate"
	}
	t.Check(dup, "the replay is refused with 409 and issue.code duplicate")
	t.Check(countReferrals(t, r.Ref) == 1, "the replay stored nothing: still one referral")
}

func scDuplicate(t *T) {
	r := t.kit.newReferral()
	body := t.kit.fixture("transaction.json", r)
	first := t.Do(Request{Method: http.MethodPost, URL: t.kit.cfg.Target, Body: body})
	t.ExpectStatus(first, http.StatusOK)
	second := t.Do(Request{Method: http.MethodPost, URL: t.kit.cfg.Target, Body: body})
	t.ExpectStatus(second, http.StatusOK)
	locs := func(resp *Response) map[string]string {
		out := map[string]string{}
		for _, e := range resp.Doc.List("entry") {
			typ, id, _ := parseLocation(e.Obj("response").Str("location"))
			out[typ] = id
		}
		return out
	}
	a, b := locs(first), locs(second)
	t.Check(a["Task"] != "" && a["Task"] == b["Task"] && a["ServiceRequest"] == b["ServiceRequest"], "the second send answers the existing Task and ServiceRequest")
	t.Check(countReferrals(t, r.Ref) == 1, "one referral is held, not two")
}

func scConditionalCreate(t *T) {
	r := t.kit.newReferral()
	body := t.kit.fixture("servicerequest.json", r)
	h := map[string]string{"If-None-Exist": "identifier=" + ReferralSystem + "|" + r.Ref}
	first := t.Do(Request{Method: http.MethodPost, URL: "ServiceRequest", Body: body, Header: h})
	t.ExpectStatus(first, http.StatusCreated)
	second := t.Do(Request{Method: http.MethodPost, URL: "ServiceRequest", Body: body, Header: h})
	t.ExpectStatus(second, http.StatusOK)
	_, id1, _ := parseLocation(first.Header.Get("Location"))
	_, id2, _ := parseLocation(second.Header.Get("Location"))
	if id2 == "" {
		id2 = second.Doc.Str("id")
	}
	t.Check(id1 != "" && id1 == id2, "the second conditional create answers 200 and the existing resource")
	t.Check(countReferrals(t, r.Ref) == 1, "one referral is held")
}

func scMissingHeaders(t *T) {
	r := t.kit.newReferral()
	resp := t.Do(Request{Method: http.MethodPost, URL: "$process-message", Body: t.kit.fixture("message-new.json", r),
		Header: map[string]string{"X-Request-Id": uuid.NewString()}})
	t.ExpectOutcome(resp, 400, 400, "")
	t.Step("refused with 400 and an OperationOutcome")
	t.Check(countReferrals(t, r.Ref) == 0, "nothing was stored")
}

// invalidCase is one faulty referral: it must be refused with an
// OperationOutcome naming the element, and nothing stored.
type invalidCase struct {
	id, name string
	fixture  string
	// element is what issue.expression must name.
	element string
	change  func(doc map[string]any)
}

var invalidCases = []invalidCase{
	{"task-intent-plan", "referral Task with intent plan", "task-direct.json", "Task.intent", func(d map[string]any) { d["intent"] = "plan" }},
	{"task-no-focus", "referral Task without focus", "task-direct.json", "Task.focus", func(d map[string]any) { delete(d, "focus") }},
	{"nhs-number-mod11", "NHS number failing Modulus 11 (3478526985)", "servicerequest.json", "identifier", func(d map[string]any) {
		p := contained(d, "pat")
		p["identifier"] = []any{map[string]any{"system": NHSNumberSystem, "value": "3478526985"}}
	}},
	{"unknown-element", "an element FHIR R4 does not define", "servicerequest.json", "ServiceRequest", func(d map[string]any) { d["colour"] = "blue" }},
	{"not-social-prescribing", "a ServiceRequest that is not a social prescribing referral", "servicerequest.json", "ServiceRequest.code", func(d map[string]any) {
		d["code"] = map[string]any{"coding": []any{map[string]any{"system": "http://snomed.info/sct", "code": "73761001", "display": "Colonoscopy"}}}
		delete(d, "category")
	}},
	{"missing-status", "a ServiceRequest without status", "servicerequest.json", "status", func(d map[string]any) { delete(d, "status") }},
}

func scInvalid(t *T, ic invalidCase) {
	r := t.kit.newReferral()
	body := mutate(t.kit.fixture(ic.fixture, r), ic.change)
	typ := strings.TrimSuffix(map[string]string{"task-direct.json": "Task", "servicerequest.json": "ServiceRequest"}[ic.fixture], "")
	resp := t.Do(Request{Method: http.MethodPost, URL: typ, Body: body})
	t.ExpectOutcome(resp, 400, 422, ic.element)
	t.Check(countReferrals(t, r.Ref) == 0, "nothing was stored")
}

func scAccept(t *T) {
	since := t.kit.cfg.Now().UTC().Add(-2 * time.Second).Format(time.RFC3339)
	r := newTransactionReferral(t)
	t.kit.lw.perform(t, r, stepAccept)
	task := waitTask(t, r, "accepted")
	t.Check(versionOf(task) != "1", "the accepted Task is a new version (versionId %s)", versionOf(task))
	t.Check(task.Doc.Obj("owner") != nil, "the accepted Task names its owner")
	inc := t.Do(Request{Method: http.MethodGet, URL: "Task?_id=" + r.TaskID + "&_include=Task:focus"})
	t.ExpectStatus(inc, http.StatusOK)
	var gotTask, gotSR bool
	for _, e := range inc.Doc.List("entry") {
		res := e.Obj("resource")
		switch res.Str("resourceType") {
		case "Task":
			gotTask = res.Str("status") == "accepted"
		case "ServiceRequest":
			gotSR = res.Str("id") == r.SRID && e.Obj("search").Str("mode") == "include"
		}
	}
	t.Check(gotTask && gotSR, "Task?_id=&_include=Task:focus returns the accepted Task and its ServiceRequest (mode include)")
	poll := t.Do(Request{Method: http.MethodGet, URL: "Task?requester:identifier=" + url.QueryEscape(ODSSystem+"|A81001") + "&_lastUpdated=" + url.QueryEscape("gt"+since)})
	t.ExpectStatus(poll, http.StatusOK)
	found := false
	for _, e := range poll.Doc.List("entry") {
		found = found || e.Obj("resource").Str("id") == r.TaskID
	}
	t.Check(found, "a GP polling Task?requester:identifier=&_lastUpdated=gt… sees the change")
}

func scReject(t *T) {
	r := newTransactionReferral(t)
	t.kit.lw.perform(t, r, stepDecline)
	task := waitTask(t, r, "rejected")
	t.Check(task.Doc.Obj("statusReason") != nil, "the rejected Task carries a statusReason")
	upd := mutate(task.Body, func(d map[string]any) { d["status"] = "cancelled"; delete(d, "meta") })
	resp := t.Do(Request{Method: http.MethodPut, URL: "Task/" + r.TaskID, Body: upd})
	t.ExpectOutcome(resp, 400, 422, "")
	t.Step("a change to the rejected (terminal) Task is refused with %d", resp.Status)
	after := getTask(t, r)
	t.Check(after.Doc.Str("status") == "rejected" && versionOf(after) == versionOf(task), "the Task is unchanged")
}

func scProgress(t *T) {
	r := newTransactionReferral(t)
	last := "1"
	for _, step := range []string{stepAccept, stepContact, stepHold, stepResume, stepComplete} {
		t.kit.lw.perform(t, r, step)
		task := waitTask(t, r, stepStatus[step])
		v := versionOf(task)
		t.Check(v != last, "after %s the Task is %s in a new version (%s)", step, stepStatus[step], v)
		last = v
		if step == stepComplete {
			var outputs int
			for _, o := range task.Doc.List("output") {
				if o.Obj("valueReference") != nil {
					outputs++
				}
			}
			t.Check(outputs > 0, "the completed Task has outputs (what was done)")
		}
	}
	hist := t.Do(Request{Method: http.MethodGet, URL: "Task/" + r.TaskID + "/_history"})
	t.ExpectStatus(hist, http.StatusOK)
	t.Check(len(hist.Doc.List("entry")) >= 6, "the Task history holds every version (%d)", len(hist.Doc.List("entry")))
	v1 := t.Do(Request{Method: http.MethodGet, URL: "Task/" + r.TaskID + "/_history/1"})
	t.ExpectStatus(v1, http.StatusOK)
	t.Check(v1.Doc.Str("status") == "requested", "version 1 still reads requested")
}

func scIllegal(t *T) {
	r := newTransactionReferral(t)
	task := getTask(t, r)
	upd := mutate(task.Body, func(d map[string]any) { d["status"] = "completed"; delete(d, "meta") })
	resp := t.Do(Request{Method: http.MethodPut, URL: "Task/" + r.TaskID, Body: upd})
	t.ExpectOutcome(resp, 400, 422, "")
	t.Step("requested → completed is refused with %d", resp.Status)
	t.Check(getTask(t, r).Doc.Str("status") == "requested", "the Task is still requested")
}

func scCancel(t *T) {
	r := newTransactionReferral(t)
	task := getTask(t, r)
	etag := task.Header.Get("ETag")
	t.Check(etag != "", "the Task has an ETag (%s)", etag)
	upd := mutate(task.Body, func(d map[string]any) { d["status"] = "cancelled"; delete(d, "meta") })
	resp := t.Do(Request{Method: http.MethodPut, URL: "Task/" + r.TaskID, Body: upd, Header: map[string]string{"If-Match": etag}})
	t.ExpectStatus(resp, http.StatusOK)
	t.Check(resp.Header.Get("ETag") != etag, "the cancellation is a new version (%s)", resp.Header.Get("ETag"))
	stale := t.Do(Request{Method: http.MethodPut, URL: "Task/" + r.TaskID, Body: upd, Header: map[string]string{"If-Match": etag}})
	t.ExpectOutcome(stale, 412, 412, "")
	t.Step("a stale If-Match is refused with 412")
	t.Check(getTask(t, r).Doc.Str("status") == "cancelled", "the Task reads cancelled")
}

func scBaRSCancel(t *T) {
	r := t.kit.newReferral()
	resp := t.Do(Request{Method: http.MethodPost, URL: "$process-message", Body: t.kit.fixture("message-new.json", r), Header: barsHeaders(uuid.NewString(), uuid.NewString())})
	t.ExpectStatus(resp, http.StatusOK)
	cancel := t.Do(Request{Method: http.MethodPost, URL: "$process-message", Body: t.kit.fixture("message-cancel.json", r), Header: barsHeaders(uuid.NewString(), uuid.NewString())})
	t.ExpectStatus(cancel, http.StatusOK)
	srs := t.Do(Request{Method: http.MethodGet, URL: "ServiceRequest?identifier=" + url.QueryEscape(ReferralSystem+"|"+r.Ref)})
	t.ExpectStatus(srs, http.StatusOK)
	var srID string
	for _, e := range srs.Doc.List("entry") {
		if res := e.Obj("resource"); res.Str("resourceType") == "ServiceRequest" {
			srID = res.Str("id")
			t.Check(res.Str("status") == "revoked", "the ServiceRequest is revoked")
		}
	}
	t.Check(srID != "", "the referral is held")
	ts := t.Do(Request{Method: http.MethodGet, URL: "Task?focus=" + url.QueryEscape("ServiceRequest/"+srID)})
	t.ExpectStatus(ts, http.StatusOK)
	cancelled := false
	for _, e := range ts.Doc.List("entry") {
		cancelled = cancelled || e.Obj("resource").Str("status") == "cancelled"
	}
	t.Check(cancelled, "the referral Task is cancelled")
	unknown := t.kit.newReferral()
	bad := t.Do(Request{Method: http.MethodPost, URL: "$process-message", Body: t.kit.fixture("message-cancel.json", unknown), Header: barsHeaders(uuid.NewString(), uuid.NewString())})
	t.ExpectOutcome(bad, 400, 422, "")
	t.Step("cancelling an unknown referral is refused with %d", bad.Status)
}

func scConcurrent(t *T) {
	r := newTransactionReferral(t)
	task := getTask(t, r)
	etag := task.Header.Get("ETag")
	upd := mutate(task.Body, func(d map[string]any) { d["status"] = "cancelled"; delete(d, "meta") })
	var wg sync.WaitGroup
	statuses := make([]int, 2)
	// Each request runs in its own scenario context copy so that the two
	// recordings do not race; a failure in either is reported below.
	errs := make([]string, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sub := &T{kit: t.kit, ctx: t.ctx, id: t.id}
			defer func() {
				if p := recover(); p != nil {
					if f, ok := p.(failure); ok {
						errs[i] = f.reason
					} else {
						errs[i] = fmt.Sprint(p)
					}
				}
			}()
			statuses[i] = sub.Do(Request{Method: http.MethodPut, URL: "Task/" + r.TaskID, Body: upd, Header: map[string]string{"If-Match": etag}}).Status
		}()
	}
	wg.Wait()
	t.requests += 2
	for _, e := range errs {
		if e != "" {
			t.Fatalf("concurrent update: %s", e)
		}
	}
	ok, pre := 0, 0
	for _, s := range statuses {
		switch s {
		case http.StatusOK:
			ok++
		case http.StatusPreconditionFailed:
			pre++
		}
	}
	t.Check(ok == 1 && pre == 1, "one update wins (200) and the other gets 412 (got %v)", statuses)
	after := getTask(t, r)
	t.Check(after.Doc.Str("status") == "cancelled", "the Task reflects the winner")
	hist := t.Do(Request{Method: http.MethodGet, URL: "Task/" + r.TaskID + "/_history"})
	t.Check(len(hist.Doc.List("entry")) == 2, "exactly one new version was written (history has %d)", len(hist.Doc.List("entry")))
}

func scPoll(t *T) {
	since := t.kit.cfg.Now().UTC().Add(-2 * time.Second).Format(time.RFC3339)
	r := newTransactionReferral(t)
	q := "Task?owner:identifier=" + url.QueryEscape(ODSSystem+"|"+t.kit.cfg.ServiceODS) + "&status=requested&_lastUpdated=" + url.QueryEscape("gt"+since)
	resp := t.Do(Request{Method: http.MethodGet, URL: q, AsService: true})
	t.ExpectStatus(resp, http.StatusOK)
	found := false
	for _, e := range resp.Doc.List("entry") {
		res := e.Obj("resource")
		if res.Str("resourceType") == "Task" {
			t.Check(res.Str("status") == "requested", "every polled Task is requested")
		}
		found = found || res.Str("id") == r.TaskID
	}
	t.Check(found, "polling Task?owner:identifier=&status=requested&_lastUpdated=gt… finds the new referral")
	sr := t.Do(Request{Method: http.MethodGet, URL: "ServiceRequest/" + r.SRID, AsService: true})
	t.ExpectStatus(sr, http.StatusOK)
	t.Check(sr.Doc.Str("status") == "active", "the recipient reads the referral's ServiceRequest")
}

func scSearch(t *T) {
	a := newTransactionReferral(t)
	b := newTransactionReferral(t)
	resp := t.Do(Request{Method: http.MethodGet, URL: "Task?_id=" + a.TaskID + "," + b.TaskID + "&_include=Task:focus"})
	t.ExpectStatus(resp, http.StatusOK)
	t.Check(resp.Doc.Str("type") == "searchset", "the answer is a searchset Bundle")
	match, include := 0, 0
	for _, e := range resp.Doc.List("entry") {
		switch e.Obj("search").Str("mode") {
		case "match":
			match++
		case "include":
			include++
		}
	}
	t.Check(match == 2 && include == 2, "two Tasks match and their two ServiceRequests are included (match %d, include %d)", match, include)
	byNHS := t.Do(Request{Method: http.MethodGet, URL: "Task?patient.identifier=" + url.QueryEscape(NHSNumberSystem+"|"+a.NHS)})
	t.ExpectStatus(byNHS, http.StatusOK)
	ids := []string{}
	for _, e := range byNHS.Doc.List("entry") {
		ids = append(ids, e.Obj("resource").Str("id"))
	}
	t.Check(len(ids) == 1 && ids[0] == a.TaskID, "Task?patient.identifier=<NHS number> finds exactly that person's referral (%v)", ids)
}
