package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/conformance"
	"github.com/linkbridge/linkbridge/fhirmap"
	"github.com/linkbridge/linkbridge/refgp"
)

// DemoCommand runs the whole loop on one machine in seconds: the gateway
// and the reference GP record endpoint on temporary SQLite files, a GP
// referral, a link worker's work on it, and after each step what the GP
// record shows.
type DemoCommand struct {
	Getenv         func(string) string
	Stdout, Stderr io.Writer
	// Done, if set, receives the demo's outcome (for tests): the reference
	// GP patient id and page URL, before --keep waits.
	Done chan<- DemoResult
}

// DemoResult is what a demo run produced. GPBase, PatientID and PageURL
// are set on the fhir route.
type DemoResult struct {
	GPBase, GatewayBase, PatientID, PageURL string
	// MDTURL is the demo person's MDT page on the gateway.
	MDTURL string
	// Record counts the current resources the GP record holds, by type
	// (fhir route).
	Record map[string]int
	// Documents are the documents the reference GP document inbox filed,
	// in order (send-document route).
	Documents []DemoDocument
	Elapsed   time.Duration
}

// demoNHS is the demo person's NHS number (the 999 test range).
const demoNHS = "9434765919"

// Run runs the demo.
func (c *DemoCommand) Run(ctx context.Context, args []string) (err error) {
	fs := newFlags("demo", c.Getenv, c.Stderr)
	fs.synopsis = "demo [--keep] [--dir DIR]"
	dir := fs.String("dir", "", "keep the SQLite files in this directory (default: a temporary directory, removed at the end)")
	addr := fs.String("addr", "127.0.0.1:0", "gateway listen address")
	gpAddr := fs.String("gp-addr", "127.0.0.1:0", "reference GP endpoint listen address")
	keep := fs.Bool("keep", false, "keep both servers running after the demo (Ctrl-C to stop) so the page can be opened")
	systemBase := fs.String("system-base", "", "the gateway's --system-base (default "+fhirmap.DefaultSystemBase+")")
	routeName := fs.String("route", "fhir", "write-back route: fhir (the reference GP's FHIR endpoint), send-document (GP Connect Send Document through the reference MESH to the reference GP document inbox) or both")
	meshAddr := fs.String("mesh-addr", "127.0.0.1:0", "reference MESH listen address (send-document route)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("demo takes no arguments, got %q", fs.Args())
	}
	route, err := linkbridge.ParseRoute(*routeName)
	if err != nil {
		return fmt.Errorf("demo --route: %w", err)
	}
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ownDir := *dir != ""
	if *dir == "" {
		tmp, err := os.MkdirTemp("", "linkbridge-demo-")
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, os.RemoveAll(tmp)) }()
		*dir = tmp
	}
	logs := &lockedBuffer{}
	d := &demo{out: c.Stdout, client: &http.Client{Timeout: 10 * time.Second}}
	gwDB := filepath.Join(*dir, "linkbridge.db")
	serveArgs := []string{"serve", "--addr", *addr, "--db", gwDB, "--create-db", "--log-level", "warn", "--shutdown-timeout", "2s"}

	// The reference GP record endpoint, in process, strict as production
	// servers are: its own ids, references enforced.
	var gpHost string
	if route.FHIR {
		gp, err := refgp.Open(ctx, filepath.Join(*dir, "reference-gp.db"), refgp.Options{})
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, gp.Close()) }()
		gln, err := net.Listen("tcp", *gpAddr)
		if err != nil {
			return fmt.Errorf("demo: listen: %w", err)
		}
		gsrv := &http.Server{Handler: gp.Handler(), ReadHeaderTimeout: 10 * time.Second}
		// Serve returns ErrServerClosed when the demo ends; if the endpoint
		// fails before that, the steps below fail waiting for the GP record.
		go func() { _ = gsrv.Serve(gln) }()
		defer func() { err = errors.Join(err, gsrv.Close()) }()
		gpHost = "http://" + gln.Addr().String()
		d.gp = gpHost + "/fhir"
		serveArgs = append(serveArgs, "--gp-base", d.gp)
	}
	// The reference MESH server and the practice's document inbox behind it.
	var mx *demoMESH
	if route.SendDocument {
		if mx, err = startDemoMESH(ctx, filepath.Join(*dir, "reference-mesh.db"), *meshAddr, gwDB); err != nil {
			return err
		}
		defer func() { err = errors.Join(err, mx.close()) }()
		serveArgs = append(serveArgs, mx.serveArgs(route)...)
	}

	// The gateway: the serve command itself.
	if *systemBase != "" {
		serveArgs = append(serveArgs, "--system-base", *systemBase)
	}
	if (&ServeCommand{Getenv: c.Getenv, Stderr: io.Discard}).flags(&ServeConfig{}).Lookup("dev") != nil {
		serveArgs = append(serveArgs, "--dev") // auth off on loopback
	}
	ready := make(chan string, 1)
	served := make(chan error, 1)
	go func() { served <- run(withReady(ctx, ready), serveArgs, c.Getenv, io.Discard, logs) }()
	var gwAddr string
	select {
	case gwAddr = <-ready:
	case err := <-served:
		return fmt.Errorf("demo: the gateway did not start: %v\n%s", err, logs.String())
	case <-time.After(10 * time.Second):
		return errors.New("demo: the gateway did not start within 10 s")
	}
	defer func() {
		cancel()
		err = errors.Join(err, <-served)
	}()
	gw := "http://" + gwAddr
	d.gw = gw
	d.printf("linkbridge demo (write-back route: %s)\n  gateway             %s/fhir  (link worker API %s/sp/v1)\n", route, gw, gw)
	if route.FHIR {
		d.printf("  reference GP record %s\n", d.gp)
	}
	if route.SendDocument {
		d.printf("  reference MESH      %s  (service mailbox %s, practice mailbox %s behind the GP document inbox)\n", mx.base, mx.spBox, mx.gpBox)
	}
	d.printf("\n")

	// The GP practice's own record of the person, created with the
	// endpoint's own id.
	var gpPatient string
	if route.FHIR {
		patient := fmt.Sprintf(`{"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":%q}],
		"name":[{"family":"XXTESTPATIENT-SOCPRESC","given":["Alex"]}],"gender":"female","birthDate":"1956-03-14"}`, demoNHS)
		st, created := d.send(http.MethodPost, d.gp+"/Patient", "application/fhir+json", []byte(patient), "")
		var gpRes struct {
			ID string `json:"id"`
		}
		if st != http.StatusCreated || json.Unmarshal(created, &gpRes) != nil || gpRes.ID == "" {
			return fmt.Errorf("demo: the reference GP refused the patient (HTTP %d)", st)
		}
		gpPatient = gpRes.ID
	}

	// 1. The GP system sends the referral.
	ref := fmt.Sprintf("demo-%d", time.Now().UnixNano())
	st, body := d.send(http.MethodPost, gw+"/fhir", "application/fhir+json", conformance.TransactionReferral(demoNHS, ref, "Y02662"), "")
	if st != http.StatusOK {
		return fmt.Errorf("demo: the referral was refused (HTTP %d): %s", st, body)
	}
	var tr struct {
		Entry []struct {
			Response struct {
				Location string `json:"location"`
			} `json:"response"`
		} `json:"entry"`
	}
	_ = json.Unmarshal(body, &tr)
	var srID string
	for _, e := range tr.Entry {
		if p := strings.Split(e.Response.Location, "/"); len(p) >= 2 && strings.Contains(e.Response.Location, "ServiceRequest/") {
			for i := range p {
				if p[i] == "ServiceRequest" && i+1 < len(p) {
					srID = p[i+1]
				}
			}
		}
	}
	if srID == "" {
		return errors.New("demo: the gateway did not say where the referral is")
	}
	d.step("1. GP system sends a referral (FHIR transaction: Patient + ServiceRequest + Task)", "")
	d.printf("   gateway: referral %s received, Task requested; nothing is written to the GP record yet\n\n", srID)

	sp := gw + "/sp/v1/referrals/" + srID
	// The story is recorded now, as it happened over the last few hours
	// (no time may be in the future; docs/domain.md#when-things-happened).
	at := time.Now().UTC().Truncate(time.Minute).Add(-4 * time.Hour)
	steps := []struct {
		title, method, path, body string
		// until is what the GP record must show before the next step.
		until func(r *gpRecord) bool
		// document is set on the steps that send the practice a document
		// on the send-document route.
		document bool
	}{
		{"2. Link worker accepts the referral", "POST", "/actions", fmt.Sprintf(`{"action":"accept","linkWorker":{"id":"lw-17","name":"Sam Link","sdsUserId":"555050304199"},"at":%q}`, at.Format(time.RFC3339)),
			func(r *gpRecord) bool { return r.taskStatus == "accepted" && r.count["CarePlan"] == 1 }, true},
		{"3. First contact: a 30-minute phone call", "POST", "/contacts", fmt.Sprintf(`{"at":%q,"mode":"phone","minutes":30,"attended":true,"notes":"Feels isolated since moving"}`, at.Format(time.RFC3339)),
			func(r *gpRecord) bool { return r.taskStatus == "in-progress" && r.count["Encounter"] == 1 }, false},
		{"4. Baseline wellbeing: SWEMWBS", "POST", "/measures", fmt.Sprintf(`{"instrument":"SWEMWBS","timepoint":"baseline","items":[2,3,3,2,3,2,3],"takenAt":%q}`, at.Format(time.RFC3339)),
			func(r *gpRecord) bool { return r.count["Observation"] == 1 }, false},
		{"5. Personalised care and support plan agreed (consent not yet recorded: codes only)", "PUT", "/plan", `{"whatMatters":"Getting out of the house","needs":[{"code":{"system":"http://snomed.info/sct","code":"267076002"}}],
			"goals":[{"description":"Join a walking group","importance":8,"confidence":6,"status":"active"}],
			"onwardReferrals":[{"service":"Parkside walking group","status":"sent"}],"signposts":[{"to":"Citizens Advice"}]}`,
			func(r *gpRecord) bool { return r.count["Goal"] == 1 && r.count["ServiceRequest"] == 1 }, true},
		{"6. The person agrees to share the details with their GP (consent: codes-only → full)", "PUT", "/consent", `{"consent":"full"}`,
			func(r *gpRecord) bool { return r.carePlanTitle != "" && strings.Contains(r.goals, "walking") }, false},
		{"7. Follow-up: a face-to-face meeting", "POST", "/contacts", fmt.Sprintf(`{"at":%q,"mode":"face-to-face","minutes":45,"attended":true}`, at.Add(2*time.Hour).Format(time.RFC3339)),
			func(r *gpRecord) bool { return r.count["Encounter"] == 2 }, false},
		{"8. Review wellbeing: SWEMWBS again", "POST", "/measures", fmt.Sprintf(`{"instrument":"SWEMWBS","timepoint":"final","items":[3,4,4,3,4,3,4],"takenAt":%q}`, at.Add(3*time.Hour).Format(time.RFC3339)),
			func(r *gpRecord) bool { return r.count["Observation"] == 2 }, false},
		{"9. Discharge: goals met", "POST", "/actions", `{"action":"complete","reasonCode":"goals-met","summary":"Walks with the Parkside group every Tuesday"}`,
			func(r *gpRecord) bool { return r.taskStatus == "completed" && r.carePlanStatus == "completed" }, true},
	}
	res := DemoResult{GatewayBase: gw, PatientID: gpPatient}
	var last *DemoDocument
	for i, s := range steps {
		if st, b := d.send(s.method, sp+s.path, "application/json", []byte(s.body), ""); st != 200 && st != 201 {
			return fmt.Errorf("demo: %s: HTTP %d: %s", s.title, st, b)
		}
		d.step(s.title, "")
		if route.FHIR {
			// Each change's Provenance is written back after the resources
			// it names: the step is done when it has arrived too.
			rec, err := d.waitGP(ctx, func(r *gpRecord) bool { return s.until(r) && r.count["Provenance"] == i+1 })
			if err != nil {
				return fmt.Errorf("demo: %s: %w\n%s", s.title, err, logs.String())
			}
			d.printf("%s", rec.String())
		}
		if !route.SendDocument {
			continue
		}
		if !s.document {
			if !route.FHIR {
				d.printf("   (no document at this point)\n")
			}
			continue
		}
		doc, err := mx.waitDocument(ctx, len(res.Documents)+1)
		if err != nil {
			return fmt.Errorf("demo: %s: %w\n%s", s.title, err, logs.String())
		}
		d.printf("%s", doc.String())
		res.Documents = append(res.Documents, *doc)
		last = doc
	}
	res.MDTURL = gw + "/mdt/people/" + srID
	// The MDT page the demo ends on shows the episode as it ended.
	if st, b := d.send(http.MethodGet, res.MDTURL, "", nil, ""); st != http.StatusOK || !bytes.Contains(b, []byte("Discharged: goals met")) {
		return fmt.Errorf("demo: the MDT page %s does not show the discharge (HTTP %d)", res.MDTURL, st)
	}
	res.Elapsed = time.Since(start)
	if route.FHIR {
		rec, _ := d.readGP()
		res.GPBase, res.Record = d.gp, rec.count
		res.PageURL = gpHost + "/patients/" + gpPatient
		d.printf("Done in %s: the GP record holds %d resources (%s), each written back by the relay with the endpoint's own ids (the reference GP is strict: it assigns ids and enforces references).\n",
			res.Elapsed.Round(time.Millisecond), rec.total(), rec.counts())
		d.printf("The GP record as the reference GP shows it: %s\n", res.PageURL)
	}
	if route.SendDocument {
		d.printf("Done in %s: the reference GP document inbox filed %d documents, each acknowledged back to the gateway over MESH (ITK3 infrastructure and business acknowledgements).\n",
			res.Elapsed.Round(time.Millisecond), len(res.Documents))
		if ownDir {
			p := filepath.Join(*dir, "discharge-document.pdf")
			if err := os.WriteFile(p, last.PDF, 0o600); err != nil {
				return err
			}
			d.printf("The discharge document as the practice filed it: %s\n", p)
		} else {
			d.printf("(run with --dir DIR to keep the discharge document's PDF)\n")
		}
	}
	d.printf("The MDT page (live: changes through /sp/v1 or /fhir appear as they happen): %s\n", res.MDTURL)
	if !*keep {
		d.printf("(run with --keep to keep the servers up and open those pages)\n")
	}
	if c.Done != nil {
		c.Done <- res
	}
	if *keep {
		d.printf("Servers running; Ctrl-C to stop.\n")
		<-ctx.Done()
	}
	return d.err
}

// demo holds the demo's clients and its output.
type demo struct {
	out    io.Writer
	gw, gp string
	client *http.Client
	// err is the first error writing to out; printf writes nothing after
	// it and Run returns it.
	err error
}

// printf writes to the demo's output unless a write has already failed.
func (d *demo) printf(format string, args ...any) {
	if d.err == nil {
		_, d.err = fmt.Fprintf(d.out, format, args...)
	}
}

func (d *demo) send(method, u, ct string, body []byte, ifMatch string) (int, []byte) {
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		return 0, nil
	}
	if body != nil {
		req.Header.Set("Content-Type", ct)
	}
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return resp.StatusCode, b
}

func (d *demo) step(title, gp string) {
	d.printf("%s\n", title)
	if gp != "" {
		d.printf("%s\n", gp)
	}
}

// gpRecord is what the reference GP holds for the demo person.
type gpRecord struct {
	count                                        map[string]int
	taskStatus, businessStatus, owner            string
	carePlanStatus, carePlanTitle, goals, scores string
	contacts                                     []string
}

func (r *gpRecord) total() int {
	n := 0
	for _, c := range r.count {
		n += c
	}
	return n
}

func (r *gpRecord) counts() string {
	var parts []string
	for t, n := range r.count {
		parts = append(parts, fmt.Sprintf("%d %s", n, t))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// String renders the record as the GP would read it.
func (r *gpRecord) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "   GP record: referral %s", r.taskStatus)
	if r.businessStatus != "" {
		fmt.Fprintf(&b, " (%s)", r.businessStatus)
	}
	if r.owner != "" {
		fmt.Fprintf(&b, ", link worker %s", r.owner)
	}
	b.WriteString("\n")
	if r.carePlanStatus != "" {
		fmt.Fprintf(&b, "              plan: %s", r.carePlanStatus)
		if r.carePlanTitle != "" {
			fmt.Fprintf(&b, " – %s", r.carePlanTitle)
		}
		b.WriteString("\n")
	}
	if r.goals != "" {
		fmt.Fprintf(&b, "              goals: %s\n", r.goals)
	}
	if len(r.contacts) > 0 {
		fmt.Fprintf(&b, "              contacts: %s\n", strings.Join(r.contacts, "; "))
	}
	if r.scores != "" {
		fmt.Fprintf(&b, "              outcome scores: %s\n", r.scores)
	}
	fmt.Fprintf(&b, "              (%d resources: %s)\n", r.total(), r.counts())
	return b.String()
}

// readGP reads the person's record from the reference GP over FHIR,
// searching by NHS number as any GP-side reader would.
func (d *demo) readGP() (*gpRecord, error) {
	rec := &gpRecord{count: map[string]int{}}
	var scores []string
	for _, typ := range []string{"Task", "Procedure", "CarePlan", "Goal", "ServiceRequest", "Encounter", "Observation"} {
		st, b := d.send(http.MethodGet, d.gp+"/"+typ+"?patient.identifier="+url.QueryEscape("https://fhir.nhs.uk/Id/nhs-number|"+demoNHS), "", nil, "")
		if st != http.StatusOK {
			return nil, fmt.Errorf("reading %s from the GP record: HTTP %d", typ, st)
		}
		var bundle struct {
			Entry []struct {
				Resource map[string]any `json:"resource"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(b, &bundle); err != nil {
			return nil, err
		}
		rec.count[typ] = len(bundle.Entry)
		if len(bundle.Entry) == 0 {
			delete(rec.count, typ)
		}
		for _, e := range bundle.Entry {
			res := jsonDoc(e.Resource)
			switch typ {
			case "Task":
				rec.taskStatus = res.str("status")
				rec.businessStatus = res.obj("businessStatus").str("text")
				rec.owner = res.obj("owner").str("display")
			case "CarePlan":
				rec.carePlanStatus, rec.carePlanTitle = res.str("status"), res.str("description")
			case "Goal":
				rec.goals = res.obj("description").str("text") + " (" + res.str("lifecycleStatus") + ")"
			case "Encounter":
				rec.contacts = append(rec.contacts, fmt.Sprintf("%s %s", strings.TrimSuffix(res.obj("period").str("start"), "T00:00:00Z")[:10], res.obj("class").str("display")))
			case "Observation":
				// The score is the Observation's value; a follow-up also
				// carries its change from baseline as a coded component
				// (docs/domain.md#how-measures-are-represented-in-fhir).
				q := res.obj("valueQuantity")
				if q == nil {
					break
				}
				score := fmt.Sprintf("SWEMWBS %v on %s", q["value"], res.str("effectiveDateTime")[:10])
				for _, c := range res.list("component") {
					if codings := c.obj("code").list("coding"); len(codings) > 0 && codings[0].str("code") == "change-from-baseline" {
						v, _ := c.obj("valueQuantity")["value"].(float64)
						change := strconv.FormatFloat(v, 'f', -1, 64)
						if v > 0 {
							change = "+" + change
						}
						score += " (change from baseline " + change + ")"
					}
				}
				scores = append(scores, score)
			}
		}
	}
	// Each change also wrote a Provenance naming the link worker (it names
	// no patient, so it is counted rather than searched by NHS number).
	if st, b := d.send(http.MethodGet, d.gp+"/Provenance?_count=1", "", nil, ""); st == http.StatusOK {
		var bundle struct {
			Total int `json:"total"`
		}
		if json.Unmarshal(b, &bundle) == nil && bundle.Total > 0 {
			rec.count["Provenance"] = bundle.Total
		}
	}
	sort.Strings(rec.contacts)
	sort.Strings(scores)
	rec.scores = strings.Join(scores, " → ")
	return rec, nil
}

// waitGP polls the GP record until it shows what the step produced.
func (d *demo) waitGP(ctx context.Context, until func(*gpRecord) bool) (*gpRecord, error) {
	deadline := time.Now().Add(8 * time.Second)
	for {
		rec, err := d.readGP()
		if err == nil && until(rec) {
			return rec, nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("the GP record did not show the change within 8 s (it shows: %s)", rec.counts())
			}
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// jsonDoc is a resource as generic JSON.
type jsonDoc map[string]any

func (j jsonDoc) str(k string) string { s, _ := j[k].(string); return s }
func (j jsonDoc) obj(k string) jsonDoc {
	m, _ := j[k].(map[string]any)
	return m
}
func (j jsonDoc) list(k string) []jsonDoc {
	a, _ := j[k].([]any)
	var out []jsonDoc
	for _, v := range a {
		if m, ok := v.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// lockedBuffer collects the gateway's logs (shown only on failure).
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends to the buffer.
func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written.
func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
