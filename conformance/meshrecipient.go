package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/mesh"
	"github.com/linkbridge/linkbridge/senddoc"
)

// The mesh-recipient role (docs/conformance.md#mesh-recipient-role): the
// target is a MESH mailbox API with a GP document inbox behind it. The kit
// plays linkbridge's send-document route: it sends "Social prescribing
// update" messages built by senddoc.Build and uploaded with adapter/mesh,
// exactly as linkbridge's MESH sender does, and reads the ITK3
// acknowledgements back from its own mailbox, validating each with
// google/fhir's STU3 protos (senddoc.ParseResponse). Every MESH request is
// recorded in the scenario's transcript.

// MESHConfig configures the mesh-recipient role.
type MESHConfig struct {
	// Mailbox, Password and SharedKey authenticate the kit's own (sending)
	// mailbox on the target's MESH API (Config.Target). The mailbox should
	// be the kit's alone: the kit reads and acknowledges everything in it.
	Mailbox, Password, SharedKey string
	// To is where the documents go: a mailbox id, or the automatic-routing
	// address GPPROVIDER_<NHS number>_<DDMMYYYY>_<surname> of a test
	// patient the target has registered (the documents are then about that
	// patient; with a mailbox id they are about a fresh 999 test patient).
	To string
	// AckTimeout bounds the wait for a message's acknowledgements (default
	// 10m).
	AckTimeout time.Duration
	// ChunkSize is the chunk size of mesh-chunked (0: a third of the
	// message, so that it goes in three chunks).
	ChunkSize int
	// Format is how the messages travel: FHIR STU3 JSON ("", the default)
	// or XML, as linkbridge's --mesh-format sends them.
	Format senddoc.Format
}

// staleAuth is how old the timestamp of the kit's stale authentication
// token is: far outside any tolerance MESH could allow
// (docs/conformance.md#mesh-recipient-role).
const staleAuth = 24 * time.Hour

// gpProviderAddress is an automatic-routing address.
var gpProviderAddress = regexp.MustCompile(`^GPPROVIDER_([0-9]{10})_([0-9]{8})_(.+)$`)

func (m *MESHConfig) defaults() error {
	if m.Mailbox == "" || m.To == "" {
		return fmt.Errorf("conformance: the mesh-recipient role needs the kit's MESH mailbox (--mesh-mailbox) and the recipient (--mesh-to)")
	}
	if m.To == m.Mailbox {
		return fmt.Errorf("conformance: --mesh-to is the kit's own mailbox; it must be the GP inbox's")
	}
	if strings.HasPrefix(m.To, "GPPROVIDER_") {
		p := gpProviderAddress.FindStringSubmatch(m.To)
		if p == nil {
			return fmt.Errorf("conformance: --mesh-to %q: an automatic-routing address is GPPROVIDER_<10-digit NHS number>_<DDMMYYYY>_<surname>", m.To)
		}
		if _, err := time.Parse("02012006", p[2]); err != nil {
			return fmt.Errorf("conformance: --mesh-to %q: the birth date is not DDMMYYYY", m.To)
		}
	}
	if m.AckTimeout <= 0 {
		m.AckTimeout = 10 * time.Minute
	}
	return nil
}

func meshRecipientScenarios() []Scenario {
	return []Scenario{
		{"mesh-authentication", "MESH authentication: a valid token is accepted; a stale timestamp and a wrong password are refused with 401 or 403 and deliver nothing",
			"docs/conformance.md §8.15; docs/send-document.md#authentication", scMeshAuth},
		{"mesh-invalid-payload", "an invalid payload (a profile outside the iteration; a primary attachment that is no PDF) draws a negative ITK3 response 20009 with diagnostics, and no business acknowledgement",
			"docs/conformance.md §8.15, rows 47-48", scMeshInvalid},
		{"mesh-send-document", "a Social prescribing update, sent as linkbridge sends it, draws positive ITK3 infrastructure and business acknowledgements naming it",
			"docs/conformance.md §8.15, row 47", scMeshSendDocument},
		{"mesh-chunked", "the same in several MESH chunks is reassembled, filed and acknowledged",
			"docs/conformance.md §8.15; docs/send-document.md#routes-used", scMeshChunked},
		{"mesh-replacement", "a replacement document (Composition.relatesTo replaces) is filed and acknowledged",
			"docs/conformance.md §8.15; docs/send-document.md#the-message", scMeshReplacement},
		{"mesh-no-stray-acks", "to the end of the run, no acknowledgement names a message sent with refused authentication, and none positive or business an invalid one",
			"docs/conformance.md §8.15", scMeshNoStrays},
	}
}

// meshState is what the mesh-recipient scenarios share in a run.
type meshState struct {
	patient senddoc.Patient
	// acked holds the MESH ids of the messages the kit read and
	// acknowledged.
	acked map[string]bool
	// responses are the ITK3 responses read, by the ITK3 message id they
	// answer.
	responses map[string][]meshResponse
	// reports are MESH non-delivery reports, by the MESH message id they
	// name.
	reports map[string]*mesh.Incoming
	// unreadable are acknowledgement-workflow messages that do not parse
	// as ITK3 responses.
	unreadable []unreadable
	// refused and invalid map the ITK3 ids of the messages sent with
	// refused authentication, and with an invalid payload, to what was
	// wrong with them.
	refused, invalid map[string]string
	// strays are what any read found that the target must never send.
	strays []stray
	// first is the first document acknowledged (mesh-replacement replaces
	// it).
	first *senddoc.Input
	// started is when the first scenario of the role began.
	started time.Time
}

// meshResponse is an ITK3 response read from the kit's mailbox.
type meshResponse struct {
	*senddoc.Response
	meshID, workflow string
	at               time.Time
	ex               *Exchange
}

func (r meshResponse) kind() string {
	if r.Business {
		return "business"
	}
	return "infrastructure"
}

type unreadable struct {
	meshID string
	err    error
	ex     *Exchange
}

type stray struct {
	text string
	ex   *Exchange
}

// mesh returns the run's mesh-recipient state.
func (k *kit) mesh() *meshState {
	if k.mst == nil {
		k.mst = &meshState{patient: meshPatient(k.cfg.MESH.To), acked: map[string]bool{}, responses: map[string][]meshResponse{},
			reports: map[string]*mesh.Incoming{}, refused: map[string]string{}, invalid: map[string]string{}, started: time.Now()}
	}
	return k.mst
}

// meshPatient is the patient the documents are about: the one an
// automatic-routing address names, else a fresh test patient.
func meshPatient(to string) senddoc.Patient {
	if p := gpProviderAddress.FindStringSubmatch(to); p != nil {
		if d, err := time.Parse("02012006", p[2]); err == nil {
			return senddoc.Patient{NHSNumber: p[1], Family: p[3], Given: "Conformance", BirthDate: d.Format("2006-01-02")}
		}
	}
	return senddoc.Patient{NHSNumber: NewNHSNumber(), Family: "Conformance", Given: "Kit", BirthDate: "1970-01-01"}
}

// meshInput is a new document for the run's patient: the discharge of a
// whole episode with outcome measures, as casework renders it at the
// discharged trigger. replaces, when set, makes it version 2 of that
// document.
func (k *kit) meshInput(replaces *senddoc.Input) *senddoc.Input {
	st := k.mesh()
	now := k.cfg.Now().UTC().Truncate(time.Second)
	if replaces != nil {
		in := *replaces
		in.MessageID, in.DocumentID, in.Replaces, in.Version, in.Now = uuid.NewString(), uuid.NewString(), replaces.DocumentID, replaces.Version+1, now
		return &in
	}
	k.seq++
	id := fmt.Sprintf("conform-%s-%d", k.runID, k.seq)
	start := now.AddDate(0, -3, 0)
	cr := &linkbridge.CaseRecord{
		Referral: &linkbridge.Referral{ID: id, PersonID: id, Status: "completed", BusinessStatus: linkbridge.BusinessDischarged,
			ServiceODS: k.cfg.ServiceODS, Consent: linkbridge.ConsentFull, DischargeReason: "goals-met",
			DischargeSummary: "Conformance kit test document: no clinical meaning.",
			LinkWorker:       linkbridge.LinkWorker{ID: "conform-lw", Name: "Conformance Kit"},
			ReceivedAt:       start, AcceptedAt: start.AddDate(0, 0, 2), AgreedAt: start.AddDate(0, 0, 9), CompletedAt: now.Add(-time.Hour)},
		Person: &linkbridge.Person{ID: id, NHSNumber: st.patient.NHSNumber, BirthDate: st.patient.BirthDate, GPODS: k.cfg.ReferrerODS},
		Measures: []*linkbridge.Measure{
			{ID: id + "-m1", ReferralID: id, Instrument: linkbridge.WEMWBS, Timepoint: linkbridge.TimepointBaseline, Total: 38, TakenAt: start.AddDate(0, 0, 9)},
			{ID: id + "-m2", ReferralID: id, Instrument: linkbridge.WEMWBS, Timepoint: linkbridge.TimepointFinal, Total: 49, TakenAt: now.Add(-2 * time.Hour)},
		},
	}
	return &senddoc.Input{Case: cr, Patient: st.patient, Trigger: senddoc.TriggerDischarged,
		Service: senddoc.Party{ODS: k.cfg.ServiceODS, Name: "linkbridge conformance kit"}, Practice: senddoc.Party{ODS: k.cfg.ReferrerODS},
		MessageID: uuid.NewString(), DocumentID: uuid.NewString(), Version: 1, Now: now}
}

// build renders a document's ITK3 message.
func (t *T) build(in *senddoc.Input) *senddoc.Message {
	msg, err := senddoc.Build(in)
	if err != nil {
		t.Fatalf("kit error: rendering the document: %v", err)
	}
	return msg
}

// meshClient is a MESH client of the kit's mailbox whose requests are
// recorded in the scenario's transcript (chunk 0: one chunk up to
// mesh.DefaultChunkSize).
func (t *T) meshClient(chunk int) *mesh.Client {
	k := t.kit
	m := k.cfg.MESH
	c, err := mesh.New(mesh.Config{BaseURL: k.cfg.Target, Mailbox: m.Mailbox, Password: m.Password, SharedKey: m.SharedKey,
		ChunkSize: chunk, Transport: recorder{t}, RetryMax: 2, RetryWaitMin: 200 * time.Millisecond, RetryWaitMax: 2 * time.Second,
		Timeout: k.cfg.Client.Timeout, Now: k.cfg.Now})
	if err != nil {
		t.Fatalf("kit error: %v", err)
	}
	return c
}

// sentDoc is a message the kit sent.
type sentDoc struct {
	msgID, meshID string
	chunks        int
	at            time.Time
}

// outgoing is the MESH message carrying a Send Document message (its
// STU3 JSON) to an address in the configured format, as linkbridge's MESH
// sender makes it (mesh.DocumentOutgoing).
func (t *T) outgoing(to string, body []byte) mesh.Outgoing {
	out, err := mesh.DocumentOutgoing(to, body, t.kit.cfg.MESH.Format)
	if err != nil {
		t.Fatalf("kit error: rendering the message as %s: %v", t.kit.cfg.MESH.Format, err)
	}
	return out
}

// sendDocument sends a Send Document message (its STU3 JSON) to the
// recipient as linkbridge's MESH sender does.
func (t *T) sendDocument(c *mesh.Client, body []byte, msgID string) sentDoc {
	out := t.outgoing(t.kit.cfg.MESH.To, body)
	at := time.Now()
	p, err := c.Send(t.ctx, out, mesh.Progress{}, func(mesh.Progress) error { return nil })
	if err != nil {
		t.Fatalf("MESH did not accept the message: %v", err)
	}
	t.Step("sent ITK3 message %s to %s with workflow %s: MESH message %s, %d bytes of %s in %d chunk(s)", msgID, out.To, out.WorkflowID,
		p.MeshMessageID, len(out.Body), out.ContentType, p.ChunksTotal)
	return sentDoc{msgID: msgID, meshID: p.MeshMessageID, chunks: p.ChunksTotal, at: at}
}

// readInbox reads every message waiting in the kit's mailbox, records what
// it is and acknowledges it; a message still listed after the kit
// acknowledged it fails the scenario. It returns how many it read.
func (t *T) readInbox(c *mesh.Client) int {
	st := t.kit.mesh()
	ids, err := c.Inbox(t.ctx)
	if err != nil {
		t.Fatalf("listing the kit's MESH inbox: %v", err)
	}
	for _, id := range ids {
		if st.acked[id] {
			t.Fatalf("message %s is still in the kit's inbox after the kit acknowledged it (PUT …/inbox/%s/status/acknowledged answered 200)", id, id)
		}
		in, err := c.Download(t.ctx, id)
		if err != nil {
			t.Fatalf("downloading message %s from the kit's inbox: %v", id, err)
		}
		st.classify(in, t.last)
		if err := c.Acknowledge(t.ctx, id); err != nil {
			t.Fatalf("acknowledging message %s in the kit's inbox: %v", id, err)
		}
		st.acked[id] = true
	}
	return len(ids)
}

// classify records one message read from the kit's mailbox.
func (st *meshState) classify(in *mesh.Incoming, ex *Exchange) {
	if in.Report() {
		st.reports[in.Header.Get(mesh.HeaderLinkedMsgID)] = in
		return
	}
	wf := in.Header.Get(mesh.HeaderWorkflowID)
	r, err := senddoc.ParseResponse(in.Body)
	if err != nil {
		id := in.Header.Get(mesh.HeaderLocalID)
		if st.refused[id] == "" {
			id, _ = senddoc.Header(in.Body)
		}
		if st.refused[id] != "" {
			st.strays = append(st.strays, stray{fmt.Sprintf("message %s, sent to the kit's own mailbox with %s and refused, was delivered (MESH message %s)", id, st.refused[id], in.ID), ex})
		} else if wf == mesh.WorkflowSendDocumentAck {
			st.unreadable = append(st.unreadable, unreadable{in.ID, err, ex})
		}
		return
	}
	resp := meshResponse{Response: r, meshID: in.ID, workflow: wf, at: time.Now(), ex: ex}
	st.responses[r.ForMessageID] = append(st.responses[r.ForMessageID], resp)
	if how := st.refused[r.ForMessageID]; how != "" {
		st.strays = append(st.strays, stray{fmt.Sprintf("an ITK3 %s response names message %s, which was sent with %s and refused: the target delivered it", resp.kind(), r.ForMessageID, how), ex})
	}
	if what := st.invalid[r.ForMessageID]; what != "" && (r.OK || r.Business) {
		pos := "negative"
		if r.OK {
			pos = "positive"
		}
		st.strays = append(st.strays, stray{fmt.Sprintf("a %s ITK3 %s response (code %s) names message %s, whose payload is invalid (%s)", pos, resp.kind(), r.Code, r.ForMessageID, what), ex})
	}
}

// wait sleeps one poll interval, or fails the scenario when the run is
// cancelled.
func (t *T) wait() {
	select {
	case <-t.ctx.Done():
		t.Fatalf("interrupted: %v", t.ctx.Err())
	case <-time.After(t.kit.cfg.PollInterval):
	}
}

// awaitResponses reads the kit's inbox until done says the responses
// naming s suffice; a MESH non-delivery report naming s, or the
// acknowledgement timeout, fails the scenario.
func (t *T) awaitResponses(c *mesh.Client, s sentDoc, what string, done func([]meshResponse) bool) []meshResponse {
	st := t.kit.mesh()
	timeout := t.kit.cfg.MESH.AckTimeout
	deadline := time.Now().Add(timeout)
	seenUnreadable := len(st.unreadable)
	for {
		t.readInbox(c)
		if rep := st.reports[s.meshID]; rep != nil {
			t.Fatalf("MESH sent a non-delivery report for message %s (ITK3 %s): %s %s: %s", s.meshID, s.msgID,
				rep.Header.Get(mesh.HeaderStatusSuccess), rep.Header.Get(mesh.HeaderStatusCode), rep.Header.Get(mesh.HeaderStatusDesc))
		}
		rs := st.responses[s.msgID]
		if done(rs) {
			return rs
		}
		if time.Now().After(deadline) {
			got := "nothing"
			if len(rs) > 0 {
				var parts []string
				for _, r := range rs {
					parts = append(parts, fmt.Sprintf("%s %s (code %s)", map[bool]string{true: "positive", false: "negative"}[r.OK], r.kind(), r.Code))
				}
				got = strings.Join(parts, ", ")
			}
			reason := fmt.Sprintf("no %s naming ITK3 message %s within %s (the acknowledgement timeout); received for it: %s", what, s.msgID, timeout, got)
			if u := st.unreadable[seenUnreadable:]; len(u) > 0 {
				reason += fmt.Sprintf("; %d message(s) with the acknowledgement workflow id were no ITK3 response, e.g. MESH message %s: %v", len(u), u[0].meshID, u[0].err)
				t.last = u[0].ex
			}
			t.Fatalf("%s", reason)
		}
		t.wait()
	}
}

// expectAcknowledged waits for positive infrastructure and business
// acknowledgements of s, each with the acknowledgement workflow id.
func (t *T) expectAcknowledged(c *mesh.Client, s sentDoc) {
	rs := t.awaitResponses(c, s, "positive business and infrastructure acknowledgements", func(rs []meshResponse) bool {
		inf, bus := false, false
		for _, r := range rs {
			if !r.OK {
				return true
			}
			inf = inf || !r.Business
			bus = bus || r.Business
		}
		return inf && bus
	})
	for _, r := range rs {
		if !r.OK {
			t.last = r.ex
			t.Fatalf("a negative ITK3 %s response (code %s: %s) answered the valid message %s", r.kind(), r.Code, r.Diagnostics, s.msgID)
		}
		if r.workflow != mesh.WorkflowSendDocumentAck {
			t.last = r.ex
			t.Fatalf("the %s acknowledgement of %s came with workflow id %q, want %s", r.kind(), s.msgID, r.workflow, mesh.WorkflowSendDocumentAck)
		}
		t.Step("positive ITK3 %s acknowledgement (code %s) naming message %s, valid STU3 (google/fhir), workflow %s, read %s after sending",
			r.kind(), r.Code, s.msgID, r.workflow, r.at.Sub(s.at).Round(time.Millisecond))
	}
	// One more listing: what the kit acknowledged has left its inbox.
	t.readInbox(c)
	t.Step("the kit acknowledged every message it read; none stayed in its inbox")
}

func scMeshSendDocument(t *T) {
	c := t.meshClient(0)
	in := t.kit.meshInput(nil)
	msg := t.build(in)
	t.expectAcknowledged(c, t.sendDocument(c, msg.Body, msg.MessageID))
	t.kit.mesh().first = in
}

func scMeshChunked(t *T) {
	msg := t.build(t.kit.meshInput(nil))
	n := len(t.outgoing(t.kit.cfg.MESH.To, msg.Body).Body)
	size := t.kit.cfg.MESH.ChunkSize
	if size <= 0 {
		size = n/3 + 1
	}
	if n <= size {
		t.Skipf("the message (%d bytes) is not over the chunk size %d (--mesh-chunk-size)", n, size)
	}
	c := t.meshClient(size)
	s := t.sendDocument(c, msg.Body, msg.MessageID)
	t.Check(s.chunks >= 2, "the message went in %d chunks of at most %d bytes", s.chunks, size)
	t.expectAcknowledged(c, s)
}

func scMeshReplacement(t *T) {
	c := t.meshClient(0)
	first := t.kit.mesh().first
	if first == nil {
		first = t.kit.meshInput(nil)
		msg := t.build(first)
		t.expectAcknowledged(c, t.sendDocument(c, msg.Body, msg.MessageID))
		t.Step("mesh-send-document did not run: the original document was sent first")
	}
	in := t.kit.meshInput(first)
	msg := t.build(in)
	t.Check(bytes.Contains(msg.Body, []byte(`"replaces"`)) && bytes.Contains(msg.Body, []byte(first.DocumentID)),
		"document %s (version %d) replaces document %s (Composition.relatesTo code replaces)", in.DocumentID, in.Version, first.DocumentID)
	t.expectAcknowledged(c, t.sendDocument(c, msg.Body, msg.MessageID))
}

// meshInvalidCases are the invalid payloads: each a valid STU3 message that
// a GP inbox must refuse with 20009 (docs/conformance.md#mesh-recipient-role).
var meshInvalidCases = []struct {
	name   string
	mutate func(res map[string]any)
}{
	{"the Patient claims a profile outside the iteration (UK Core R4's)", func(res map[string]any) {
		if res["resourceType"] == "Patient" {
			res["meta"] = map[string]any{"profile": []any{"https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"}}
		}
	}},
	{"the primary attachment is no PDF (Binary contentType text/plain)", func(res map[string]any) {
		if res["resourceType"] == "Binary" {
			res["contentType"] = "text/plain"
		}
	}},
}

// breakDocument applies mutate to every resource of the message's
// document Bundle.
func breakDocument(body []byte, mutate func(map[string]any)) ([]byte, error) {
	var msg map[string]any
	if err := json.Unmarshal(body, &msg); err != nil {
		return nil, err
	}
	for _, e := range asSlice(msg["entry"]) {
		res, _ := e.(map[string]any)["resource"].(map[string]any)
		if res["type"] != "document" {
			continue
		}
		for _, de := range asSlice(res["entry"]) {
			if r, ok := de.(map[string]any)["resource"].(map[string]any); ok {
				mutate(r)
			}
		}
	}
	return json.Marshal(msg)
}

func scMeshInvalid(t *T) {
	st := t.kit.mesh()
	c := t.meshClient(0)
	sent := make([]sentDoc, len(meshInvalidCases))
	for i, ic := range meshInvalidCases {
		msg := t.build(t.kit.meshInput(nil))
		body, err := breakDocument(msg.Body, ic.mutate)
		if err == nil {
			_, err = senddoc.ParseSTU3(body)
		}
		if err != nil || bytes.Equal(body, msg.Body) {
			t.Fatalf("kit error: the invalid case %q is not a changed, readable STU3 message: %v", ic.name, err)
		}
		st.invalid[msg.MessageID] = ic.name
		sent[i] = t.sendDocument(c, body, msg.MessageID)
		t.Step("(message %s: %s)", msg.MessageID, ic.name)
	}
	for i, s := range sent {
		ic := meshInvalidCases[i]
		first := t.awaitResponses(c, s, "ITK3 response", func(rs []meshResponse) bool { return len(rs) > 0 })[0]
		// A business acknowledgement would follow the first response
		// soon: keep reading as long again as that took (at least two
		// polls). Later reads, to the end of the run, check again
		// (mesh-no-stray-acks).
		grace := min(max(first.at.Sub(s.at), 2*t.kit.cfg.PollInterval), t.kit.cfg.MESH.AckTimeout)
		for end := time.Now().Add(grace); time.Now().Before(end); {
			t.wait()
			t.readInbox(c)
		}
		var neg *meshResponse
		for _, r := range st.responses[s.msgID] {
			if r.OK || r.Business {
				t.last = r.ex
				t.Fatalf("a %s ITK3 %s response (code %s) answered message %s, whose payload is invalid: %s",
					map[bool]string{true: "positive", false: "negative"}[r.OK], r.kind(), r.Code, s.msgID, ic.name)
			}
			if r.Code == senddoc.CodePayloadInvalid {
				neg = &r
			}
		}
		if neg == nil {
			t.last = first.ex
			t.Fatalf("the negative ITK3 response to message %s (%s) has code %s, want %s (payload validation failure)", s.msgID, ic.name, first.Code, senddoc.CodePayloadInvalid)
		}
		t.last = neg.ex
		t.Check(strings.TrimSpace(neg.Diagnostics) != "", "the negative response's OperationOutcome gives diagnostics (%q)", neg.Diagnostics)
		t.Step("%s: a negative ITK3 infrastructure response %s, valid STU3 (google/fhir), and no business acknowledgement within %s",
			ic.name, senddoc.CodePayloadInvalid, grace.Round(time.Millisecond))
	}
}

// meshRaw sends one MESH request as the kit's mailbox with the given
// Authorization value and returns the status.
func (t *T) meshRaw(method, path, auth string, hdr http.Header, body []byte) int {
	k := t.kit
	u := strings.TrimRight(k.cfg.Target, "/") + "/messageexchange/" + url.PathEscape(k.cfg.MESH.Mailbox) + path
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.ctx, method, u, rd)
	if err != nil {
		t.Fatalf("kit error: %v", err)
	}
	for name, v := range hdr {
		req.Header[name] = v
	}
	req.Header.Set("Accept", mesh.AcceptV2)
	req.Header.Set("Authorization", auth)
	resp, err := recorder{t}.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: no answer: %v", method, u, err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

func scMeshAuth(t *T) {
	k := t.kit
	m := k.cfg.MESH
	st := k.mesh()
	c := t.meshClient(0)
	if err := c.Handshake(t.ctx); err != nil {
		t.Fatalf("the handshake with valid authentication failed: %v", err)
	}
	t.Step("the handshake (GET /messageexchange/%s) with valid authentication answers 200", m.Mailbox)
	t.Step("%d message(s) left in the kit's mailbox read and acknowledged", t.readInbox(c))
	for _, bad := range []struct {
		name string
		// token makes a fresh token (a new nonce) with the fault.
		token func() string
	}{
		{fmt.Sprintf("a timestamp %d hours old", int(staleAuth.Hours())), func() string {
			return mesh.AuthToken(m.Mailbox, m.Password, m.SharedKey, uuid.NewString(), 0, k.cfg.Now().Add(-staleAuth))
		}},
		{"a wrong password", func() string {
			return mesh.AuthToken(m.Mailbox, m.Password+"-wrong", m.SharedKey, uuid.NewString(), 0, k.cfg.Now())
		}},
	} {
		status := t.meshRaw(http.MethodGet, "", bad.token(), nil, nil)
		t.Check(status == http.StatusUnauthorized || status == http.StatusForbidden, "a handshake with %s is refused with 401 or 403 (got %d)", bad.name, status)
		// A send with it, to the kit's own mailbox and to the recipient:
		// refused, and never delivered (the kit's own inbox is read
		// below; an acknowledgement naming either is looked for to the
		// end of the run).
		for _, to := range []string{m.Mailbox, m.To} {
			msg := t.build(k.meshInput(nil))
			st.refused[msg.MessageID] = bad.name
			out := t.outgoing(to, msg.Body)
			hdr := http.Header{}
			hdr.Set(mesh.HeaderFrom, m.Mailbox)
			hdr.Set(mesh.HeaderTo, out.To)
			hdr.Set(mesh.HeaderWorkflowID, out.WorkflowID)
			hdr.Set(mesh.HeaderSubject, out.Subject)
			hdr.Set(mesh.HeaderLocalID, out.LocalID)
			hdr.Set(mesh.HeaderContentType, out.ContentType)
			hdr.Set(mesh.HeaderChunkRange, "1:1")
			hdr.Set("Content-Type", "application/octet-stream")
			status := t.meshRaw(http.MethodPost, "/outbox", bad.token(), hdr, out.Body)
			t.Check(status == http.StatusUnauthorized || status == http.StatusForbidden, "sending message %s to %s with %s is refused with 401 or 403 (got %d)", msg.MessageID, to, bad.name, status)
		}
	}
	t.readInbox(c)
	for _, s := range st.strays {
		t.last = s.ex
		t.Fatalf("%s", s.text)
	}
	t.Step("nothing sent with refused authentication reached the kit's own mailbox")
}

func scMeshNoStrays(t *T) {
	st := t.kit.mesh()
	t.readInbox(t.meshClient(0))
	if len(st.refused)+len(st.invalid) == 0 {
		t.Skipf("no message with refused authentication or an invalid payload was sent in this run (mesh-authentication and mesh-invalid-payload did not run)")
	}
	if len(st.strays) > 0 {
		var texts []string
		for _, s := range st.strays {
			texts = append(texts, s.text)
		}
		t.last = st.strays[0].ex
		t.Fatalf("%s", strings.Join(texts, "; "))
	}
	t.Step("in %s of reading, no acknowledgement named any of the %d messages sent with refused authentication, and none positive or business any of the %d invalid ones",
		time.Since(st.started).Round(time.Second), len(st.refused), len(st.invalid))
}
