package bench

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/fhirmap"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	patpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/patient_go_proto"
	srpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/service_request_go_proto"
	taskpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
	"google.golang.org/protobuf/proto"
)

// Journeys builds the seeded referrals: referral i's journey from intake
// to where it stands at SeedConfig.End, as the intakes and changes that
// intake and casework make, deterministically from SeedConfig.Seed and i.
//
// What a journey holds, with the shares of a full seed (the rest of the
// distribution follows from the times: the last months' referrals are
// cut at End, so they are still requested, accepted, in progress or on
// hold):
//   - the intake: a new person (one in eight referrals is of a person
//     referred before, years earlier, linked to that episode as a
//     re-referral; in seeds of more than a few thousand referrals, so that
//     the earlier one is stored by a batch far ahead), the referrer's
//     Patient, ServiceRequest and the referral Task, from one of
//     Practices GP practices to one of Services services;
//   - 8% declined by the service and 4% cancelled by the referrer before
//     acceptance; the rest accepted by one of the service's link workers
//     within a week, with the person's consent (full 55%, codes-only 35%,
//     none 10%);
//   - after acceptance: 5% declined by the person; otherwise 0 to 14
//     contacts (a tenth not attended), the first attended one starting the
//     work; baseline SWEMWBS (and ONS4 for half) at the first contact; a
//     plan with 1 to 4 goals; on hold for two weeks in 8%; then discharge
//     (complete, with final measures for most), failure (no contact
//     possible, or none attended) or cancellation.
//
// Each change is a new referral version with its history event and audit
// record, as casework stores it. The FHIR view follows casework's rules
// with one simplification, which keeps the seed from spending most of
// its time in JSON encoding: the referral Task gets a new version (with
// its outputs) when the workflow state changes (status, business status,
// link worker), not when a contact or measure alone adds an output; every
// resource of the case view (Encounter, Observation, Goal, CarePlan,
// Procedure) gets version 1 with the change that creates it, and a new
// version when its content changes (the plan, the discharge). Each
// resource is built by fhirmap and rendered as google/fhir renders it
// (fhirjson.Codec; from a template of its shape, see renderer), with
// the search parameter values fhirmap.SearchParams gives it. Changes in
// the last SeedConfig.OutboxWindow queue their write-backs (the versions,
// then the Provenance), pending; their bodies are the stored versions
// rather than the GP record's form (of about the same size). No topic
// events are recorded: a seeded store has no subscriptions.
type Journeys struct {
	cfg   SeedConfig
	codec *fhirjson.Codec
	// tpl renders the resources as codec does, from templates.
	tpl     *renderer
	sys     fhirmap.Systems
	step    time.Duration
	start   time.Time
	people  int
	nhs     []uint32 // valid 999-range NHS number stems, permuted
	workers [][]linkbridge.LinkWorker
	// practiceCum are the practices' cumulative referral weights (see
	// practiceWeights); practice p belongs to service p mod Services.
	practiceCum []float64
}

// seedReReferralShare: one referral in eight is of a person referred
// before (referral i's person is person i mod people).
const seedReReferralShare = 8

// newJourneys prepares the journeys of cfg (validated).
func newJourneys(cfg SeedConfig, codec *fhirjson.Codec) *Journeys {
	j := &Journeys{cfg: cfg, codec: codec, tpl: newRenderer(codec), sys: seedSystems}
	j.start = cfg.End.Add(-cfg.Span)
	j.step = cfg.Span / time.Duration(cfg.Referrals)
	j.nhs = nhsStems(cfg.Seed)
	j.people = cfg.Referrals
	// A re-referral's person is stored by a batch far ahead of it, so that
	// batches may be written in any order: person k's first referral is k,
	// the next k+people, and people is at least 7/8 of the referrals. Small
	// seeds (tests) have no re-referrals unless the gap is safe.
	if p := cfg.Referrals - cfg.Referrals/seedReReferralShare; cfg.Referrals-p > 0 && p >= 4*(cfg.Workers+cfg.Writers+2)*cfg.Batch {
		j.people = p
	}
	j.people = min(j.people, len(j.nhs))
	weights := practiceWeights(cfg.Practices, cfg.Seed)
	share := make([]float64, cfg.Services) // of the referrals, by service
	total, acc := 0.0, 0.0
	for _, w := range weights {
		total += w
	}
	j.practiceCum = make([]float64, len(weights))
	for p, w := range weights {
		acc += w / total
		j.practiceCum[p] = acc
		share[p%cfg.Services] += w / total
	}
	j.practiceCum[len(weights)-1] = 1
	// Each service has the link workers its yearly referrals need at a
	// caseload of about seedCaseloadYearly people a year.
	yearly := perYear(cfg.Referrals, cfg.Span)
	j.workers = make([][]linkbridge.LinkWorker, cfg.Services)
	for s := range j.workers {
		for w := range clamp(yearly*share[s]/seedCaseloadYearly, 1, 99) {
			j.workers[s] = append(j.workers[s], linkbridge.LinkWorker{
				ID:   fmt.Sprintf("lw-%03d-%02d", s+1, w+1),
				Name: givenNames[(s*7+w)%len(givenNames)] + " " + familyNames[(s*11+w*3)%len(familyNames)],
			})
		}
	}
	return j
}

// seedPracticeSpread is the spread (log-normal sigma) of the practices'
// referral volumes: practice list sizes vary a few times around the
// median, so the largest of 40 practices refers about 3 times the
// median's volume, of 1,300 about 5 times.
const seedPracticeSpread = 0.5

// practiceWeights returns n practices' relative referral volumes: the
// quantiles of a log-normal distribution (median 1), in an order the seed
// permutes so that a practice's index says nothing of its size.
func practiceWeights(n int, seed uint64) []float64 {
	w := make([]float64, n)
	for q := range w {
		z := math.Sqrt2 * math.Erfinv(2*(float64(q)+0.5)/float64(n)-1)
		w[q] = math.Exp(seedPracticeSpread * z)
	}
	r := rand.New(rand.NewPCG(seed, 0x707261))
	r.Shuffle(n, func(a, b int) { w[a], w[b] = w[b], w[a] })
	return w
}

// nhsStems returns the stems s (0–999,999) whose NHS number 999 s c has a
// Modulus 11 check digit c (those whose check would be 10 are skipped), in
// an order the seed permutes.
func nhsStems(seed uint64) []uint32 {
	var out []uint32
	for s := range uint32(1_000_000) {
		if _, ok := nhsCheck(s); ok {
			out = append(out, s)
		}
	}
	r := rand.New(rand.NewPCG(seed, 0x6e6873))
	r.Shuffle(len(out), func(a, b int) { out[a], out[b] = out[b], out[a] })
	return out
}

// nhsCheck returns the Modulus 11 check digit of 999 followed by the six
// digits of s, and false when there is none (check 10).
func nhsCheck(s uint32) (int, bool) {
	var d [9]int
	d[0], d[1], d[2] = 9, 9, 9
	for i := 8; i >= 3; i-- {
		d[i] = int(s % 10)
		s /= 10
	}
	sum := 0
	for i, v := range d {
		sum += v * (10 - i)
	}
	c := 11 - sum%11
	switch c {
	case 11:
		return 0, true
	case 10:
		return 0, false
	}
	return c, true
}

// NHSNumber returns person k's NHS number: valid (Modulus 11), in the
// 999 test range, never issued to anyone.
func (j *Journeys) NHSNumber(k int) string {
	s := j.nhs[k%len(j.nhs)]
	c, _ := nhsCheck(s)
	return fmt.Sprintf("999%06d%d", s, c)
}

// Practice returns the ODS code of GP practice p (a letter and five
// digits, as GP practices' are).
func Practice(p int) string { return fmt.Sprintf("Y%05d", 90001+p) }

// Service returns the ODS code of social prescribing service s (SPS001 to
// SPS999: three letters and three digits, as ODS codes of organisations
// other than practices can be).
func Service(s int) string { return fmt.Sprintf("SPS%03d", s+1) }

// person returns referral i's person index.
func (j *Journeys) person(i int) int { return i % j.people }

// personPractice returns the practice index of person k, drawn by the
// practices' weights (fixed by k).
func (j *Journeys) personPractice(k int) int {
	r := rand.New(rand.NewPCG(j.cfg.Seed, uint64(k)<<1|1))
	p, _ := slices.BinarySearch(j.practiceCum, r.Float64())
	return min(p, len(j.practiceCum)-1)
}

// PersonPractice returns the ODS code of person k's practice: practices
// refer in proportion to log-normal weights (see practiceWeights).
func (j *Journeys) PersonPractice(k int) string { return Practice(j.personPractice(k)) }

// PersonService returns the service person k is referred to: the one
// their practice belongs to (practice p's is p mod Services, so each
// service takes the referrals of about Practices/Services practices).
func (j *Journeys) PersonService(k int) int {
	return j.personPractice(k) % j.cfg.Services
}

// Received returns when referral i was received.
func (j *Journeys) Received(i int) time.Time {
	return j.start.Add(time.Duration(i) * j.step).Truncate(time.Second)
}

// ids hands out referral i's ids: random UUIDs, as the gateway's, from
// the referral's own stream.
type ids struct{ r *rand.Rand }

func (g ids) next() string {
	var b [16]byte
	x, y := g.r.Uint64(), g.r.Uint64()
	for k := range 8 {
		b[k], b[8+k] = byte(x>>(8*k)), byte(y>>(8*k))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// rng returns referral i's random stream; key tells streams apart.
func (j *Journeys) rng(i int, key uint64) *rand.Rand {
	return rand.New(rand.NewPCG(j.cfg.Seed, uint64(i)<<8|key))
}

// ReferralID returns the id of referral i (its ServiceRequest's).
func (j *Journeys) ReferralID(i int) string { return ids{j.rng(i, 1)}.next() }

// PersonID returns the id of person k (their first referral's Patient).
func (j *Journeys) PersonID(k int) string { return ids{j.rng(k, 2)}.next() }

// journey is one referral being built.
type journey struct {
	j     *Journeys
	i     int
	r     *rand.Rand
	ids   ids
	cr    *linkbridge.CaseRecord
	task  *taskpb.Task
	ops   []linkbridge.BatchOp
	stats *SeedStats
	// stored are the versions of the FHIR view stored so far, by
	// reference, with their content (deterministic proto bytes).
	stored map[string]storedVersion
	// gp is the referrer's client; svc the service's index.
	gp  string
	svc int
}

// storedVersion is a stored resource's version and content.
type storedVersion struct {
	version int
	content []byte
}

// Journey returns referral i's intake and changes, in order, and adds
// what they store to stats.
func (j *Journeys) Journey(i int, stats *SeedStats) ([]linkbridge.BatchOp, error) {
	jr := &journey{j: j, i: i, r: j.rng(i, 0), ids: ids{j.rng(i, 3)}, stats: stats, stored: map[string]storedVersion{}}
	if err := jr.intake(); err != nil {
		return nil, err
	}
	if err := jr.work(); err != nil {
		return nil, err
	}
	stats.Referrals++
	if stats.Statuses == nil {
		stats.Statuses = map[linkbridge.TaskStatus]int{}
	}
	stats.Statuses[jr.cr.Referral.Status]++
	stats.Contacts += len(jr.cr.Contacts)
	stats.Measures += len(jr.cr.Measures)
	stats.Goals += len(jr.cr.Plan.Goals)
	return jr.ops, nil
}

// Names of the seeded people and link workers (common English names).
var (
	givenNames  = []string{"Olivia", "Amelia", "Isla", "Ava", "Mia", "Ivy", "Lily", "Sophia", "Grace", "Freya", "Noah", "Oliver", "George", "Arthur", "Muhammad", "Leo", "Harry", "Oscar", "Archie", "Henry", "Margaret", "Joan", "Dorothy", "Peter", "David", "John", "Susan", "Patricia", "Aisha", "Priya"}
	familyNames = []string{"Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel", "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Thomas", "Clarke", "Jackson", "Wood", "Harris", "Edwards", "Turner", "Martin", "Cooper", "Hill", "Ward", "Hughes", "Khan", "Ahmed", "Begum", "Ali", "Singh"}
	// seedReasons are reasons for referral: SNOMED CT findings.
	seedReasons = []linkbridge.Coding{
		{System: linkbridge.SNOMEDSystem, Code: "422650009", Display: "Social isolation"},
		{System: linkbridge.SNOMEDSystem, Code: "73595000", Display: "Stress"},
		{Display: "Lonely since bereavement"},
		{Display: "Debt and housing worries"},
		{Display: "Low mood, would like to be more active"},
	}
	seedGoals   = []string{"Walk to the park twice a week", "Join the community choir", "Sort out the council tax arrears", "Meet a friend for coffee every week", "Go to the men's shed on Tuesdays", "Learn to use a tablet to call family", "Start the free swimming sessions", "Get help with the heating bills"}
	seedStreets = []string{"High Street", "Station Road", "Church Lane", "Victoria Road", "Green Lane", "Manor Road", "Park Avenue", "Mill Lane"}
)

// at returns a working-hours time d days after t.
func (jr *journey) at(t time.Time, days int) time.Time {
	d := t.Truncate(24*time.Hour).AddDate(0, 0, days)
	return d.Add(time.Duration(9*60+jr.r.IntN(8*60)) * time.Minute).Add(time.Duration(jr.r.IntN(60)) * time.Second)
}

// intake builds the referral as intake stores it.
func (jr *journey) intake() error {
	j, i := jr.j, jr.i
	k := j.person(i)
	newPerson := k == i
	practice := j.PersonPractice(k)
	svc := j.PersonService(k)
	received := j.Received(i)
	authored := received.Add(-time.Duration(jr.r.IntN(72*60)) * time.Minute)
	jr.gp, jr.svc = "gp-"+practice, svc

	person := &linkbridge.Person{ID: j.PersonID(k), NHSNumber: j.NHSNumber(k), GPODS: practice, CreatedAt: j.Received(k)}
	pr := j.rng(k, 4) // the person's own stream: the same demographics in every referral
	person.BirthDate = fmt.Sprintf("%04d-%02d-%02d", 1930+pr.IntN(80), 1+pr.IntN(12), 1+pr.IntN(28))
	given, family := givenNames[pr.IntN(len(givenNames))], familyNames[pr.IntN(len(familyNames))]
	street, house := seedStreets[pr.IntN(len(seedStreets))], 1+pr.IntN(200)

	rf := &linkbridge.Referral{
		ID: j.ReferralID(i), TaskID: jr.ids.next(), PersonID: person.ID,
		Identifier:    linkbridge.Identifier{System: "https://fhir." + practice + ".example-gp.nhs.uk/Id/referral", Value: "REF-" + strconv.Itoa(100000+i)},
		Status:        linkbridge.TaskRequested,
		RequestStatus: "active", Priority: "routine",
		ReferrerODS: practice, Source: linkbridge.SourceGPPractice, ServiceODS: Service(svc),
		AuthoredOn: authored, ReceivedAt: received, UpdatedAt: received, Version: 1,
	}
	if jr.r.IntN(10) == 0 {
		rf.Priority = "urgent"
	}
	rf.Reasons = append(rf.Reasons, seedReasons[jr.r.IntN(len(seedReasons))])
	if jr.r.IntN(3) == 0 {
		if c := seedReasons[jr.r.IntN(len(seedReasons))]; c != rf.Reasons[0] {
			rf.Reasons = append(rf.Reasons, c)
		}
	}
	rf.DoNotContact = jr.r.IntN(40) == 0
	rf.PatientID = person.ID
	if !newPerson {
		rf.PatientID = jr.ids.next()
		if earlier := i - j.people; j.PersonService(k) == svc && earlier >= 0 {
			rf.Link = linkbridge.ReferralLink{ReferralID: j.ReferralID(earlier), Kind: linkbridge.LinkReReferral}
		}
	}
	jr.cr = &linkbridge.CaseRecord{Referral: rf, Person: person}

	pat := &patpb.Patient{
		Identifier: []*dpb.Identifier{{System: &dpb.Uri{Value: linkbridge.NHSNumberSystem}, Value: &dpb.String{Value: person.NHSNumber}}},
		Name:       []*dpb.HumanName{{Use: &dpb.HumanName_UseCode{Value: cpb.NameUseCode_OFFICIAL}, Family: &dpb.String{Value: family}, Given: []*dpb.String{{Value: given}}}},
		Gender:     &patpb.Patient_GenderCode{Value: []cpb.AdministrativeGenderCode_Value{cpb.AdministrativeGenderCode_FEMALE, cpb.AdministrativeGenderCode_MALE}[pr.IntN(2)]},
		BirthDate:  &dpb.Date{ValueUs: mustDay(person.BirthDate).UnixMicro(), Precision: dpb.Date_DAY, Timezone: "Z"},
		Telecom: []*dpb.ContactPoint{{System: &dpb.ContactPoint_SystemCode{Value: cpb.ContactPointSystemCode_PHONE},
			Value: &dpb.String{Value: fmt.Sprintf("07700 9%05d", pr.IntN(100000))}, Use: &dpb.ContactPoint_UseCode{Value: cpb.ContactPointUseCode_MOBILE}}},
		Address: []*dpb.Address{{Line: []*dpb.String{{Value: fmt.Sprintf("%d %s", house, street)}}, City: &dpb.String{Value: "Leeds"},
			PostalCode: &dpb.String{Value: fmt.Sprintf("LS%d %dAB", 1+pr.IntN(28), 1+pr.IntN(9))}}},
		GeneralPractitioner: []*dpb.Reference{odsReference(practice)},
	}
	sr := &srpb.ServiceRequest{
		Identifier: []*dpb.Identifier{{System: &dpb.Uri{Value: rf.Identifier.System}, Value: &dpb.String{Value: rf.Identifier.Value}}},
		Status:     &srpb.ServiceRequest_StatusCode{Value: cpb.RequestStatusCode_ACTIVE},
		Intent:     &srpb.ServiceRequest_IntentCode{Value: cpb.RequestIntentCode_ORDER},
		Category: []*dpb.CodeableConcept{{Coding: []*dpb.Coding{{System: &dpb.Uri{Value: linkbridge.SNOMEDSystem},
			Code: &dpb.Code{Value: "306206005"}, Display: &dpb.String{Value: "Referral to service"}}}}},
		Code: &dpb.CodeableConcept{Coding: []*dpb.Coding{{System: &dpb.Uri{Value: linkbridge.SNOMEDSystem},
			Code: &dpb.Code{Value: linkbridge.SCTReferralToSocialPrescribing}, Display: &dpb.String{Value: "Referral to social prescribing service"}}}},
		Subject:    fhirmap.NewRef("Patient", rf.PatientID),
		AuthoredOn: fhirmap.DateTime(authored),
		Requester:  odsReference(practice),
		Performer:  []*dpb.Reference{odsReference(rf.ServiceODS)},
	}
	sr.Priority = &srpb.ServiceRequest_PriorityCode{}
	fhirmap.SetCode(sr.Priority, rf.Priority)
	for _, c := range rf.Reasons {
		cc := &dpb.CodeableConcept{Text: &dpb.String{Value: c.Display}}
		if c.Code != "" {
			cc.Coding = []*dpb.Coding{{System: &dpb.Uri{Value: c.System}, Code: &dpb.Code{Value: c.Code}, Display: &dpb.String{Value: c.Display}}}
		}
		sr.ReasonCode = append(sr.ReasonCode, cc)
	}
	jr.task = fhirmap.NewReferralTask(rf, sr.GetRequester(), received)

	in := &linkbridge.Intake{Person: person, NewPerson: newPerson, Referral: rf}
	for _, m := range []proto.Message{pat, sr, jr.task} {
		id := map[proto.Message]string{pat: rf.PatientID, sr: rf.ID, jr.task: rf.TaskID}[m]
		fhirmap.SetID(m, id)
		res, err := jr.render(m, 1, received)
		if err != nil {
			return err
		}
		in.Resources = append(in.Resources, res)
	}
	in.Audit = jr.audit(received, linkbridge.RoleGP, practice, jr.gp, "C", "create", "POST", "/fhir", in.Resources)
	jr.ops = append(jr.ops, linkbridge.BatchOp{Intake: in})
	jr.stats.Audit++
	if newPerson {
		jr.stats.People++
	}
	return nil
}

// mustDay parses a YYYY-MM-DD date the seed made.
func mustDay(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

// odsReference is a logical reference to an organisation by ODS code.
func odsReference(ods string) *dpb.Reference {
	return &dpb.Reference{Type: &dpb.Uri{Value: "Organization"},
		Identifier: &dpb.Identifier{System: &dpb.Uri{Value: linkbridge.ODSSystem}, Value: &dpb.String{Value: ods}}}
}

// render sets a resource's meta and renders it as the store keeps it.
func (jr *journey) render(m proto.Message, version int, at time.Time) (*linkbridge.Resource, error) {
	fhirmap.SetMeta(m, version, at)
	params := fhirmap.SearchParams(m) // before Encode, as intake does
	body, err := jr.j.tpl.Encode(m)
	if err != nil {
		return nil, err
	}
	jr.stats.Resources++
	return &linkbridge.Resource{Type: fhirmap.TypeName(m), ID: fhirmap.ID(m), VersionID: version, LastUpdated: at, Body: body, Params: params}, nil
}

// audit is the audit record of a request that wrote resources.
func (jr *journey) audit(at time.Time, role linkbridge.Role, ods, client, action, operation, method, route string, written []*linkbridge.Resource) *linkbridge.AuditRecord {
	rec := &linkbridge.AuditRecord{ID: jr.ids.next(), Recorded: at, ClientID: client, Role: role, ODS: ods, Action: action,
		Operation: operation, Method: method, Route: route, Status: 200, RequestID: jr.ids.next(), Source: seedSource}
	for _, r := range written {
		if len(rec.Entities) < 60 {
			rec.Entities = append(rec.Entities, r.Reference())
		}
	}
	return rec
}

// change applies one change to the case at t, as casework.apply does:
// edit changes the record (the referral is a copy), the FHIR view is
// brought up to date (see Journeys), and the change is queued with its
// event, audit record and, within the outbox window, its write-backs.
// It returns false when t is past End: the journey stops there.
func (jr *journey) change(t time.Time, action string, actor linkbridge.Actor, edit func(cr *linkbridge.CaseRecord, ch *linkbridge.ReferralChange) error) (bool, error) {
	if !t.Before(jr.j.cfg.End) {
		return false, nil
	}
	prev := *jr.cr.Referral
	next := prev
	jr.cr.Referral = &next
	ch := &linkbridge.ReferralChange{Referral: &next}
	if err := edit(jr.cr, ch); err != nil {
		return false, fmt.Errorf("%s: %w", action, err)
	}
	next.Version++
	next.UpdatedAt = t
	final := next.Status.Terminal()
	view := jr.j.sys.CaseView(jr.cr)
	var written []*linkbridge.Resource
	for _, g := range view {
		ref := g.Reference()
		s, ok := jr.stored[ref]
		if ok && !final && !(ch.Plan != nil && (g.Type == "CarePlan" || g.Type == "Goal")) {
			continue // unchanged: see Journeys
		}
		content, err := proto.MarshalOptions{Deterministic: true}.Marshal(g.Resource)
		if err != nil {
			return false, err
		}
		if ok && bytes.Equal(content, s.content) {
			continue
		}
		res, err := jr.render(g.Resource, s.version+1, t)
		if err != nil {
			return false, fmt.Errorf("%s: %w", action, err)
		}
		jr.stored[ref] = storedVersion{res.VersionID, content}
		written = append(written, res)
	}
	if next.Status != prev.Status || next.BusinessStatus != prev.BusinessStatus || next.LinkWorker != prev.LinkWorker {
		if actor == linkbridge.ActorRequester {
			jr.j.sys.ApplyReferralToTask(jr.task, &next, t)
		} else {
			jr.j.sys.ApplyCaseToTask(jr.task, &next, view, t)
		}
		res, err := jr.render(jr.task, jr.taskVersion()+1, t)
		if err != nil {
			return false, fmt.Errorf("%s: %w", action, err)
		}
		jr.stored["Task/"+next.TaskID] = storedVersion{version: res.VersionID}
		written = append(written, res)
	}
	ch.Resources = written
	// Version, At and Status default to the new referral's.
	ch.Event = &linkbridge.ReferralEvent{Action: action, Actor: actorName(&next, actor)}
	if t.After(jr.j.cfg.End.Add(-jr.j.cfg.OutboxWindow)) && len(written) > 0 && jr.j.cfg.OutboxWindow > 0 {
		if err := jr.writeBacks(ch, written, action, actor, t); err != nil {
			return false, err
		}
	}
	role, ods, client := linkbridge.RoleService, next.ServiceODS, "sp-"+next.ServiceODS
	if actor == linkbridge.ActorRequester {
		role, ods, client = linkbridge.RoleGP, next.ReferrerODS, jr.gp
	}
	ch.Audit = jr.audit(t, role, ods, client, "U", "sp-change", "POST", "/sp/v1/referrals/{id}/"+action, written)
	jr.ops = append(jr.ops, linkbridge.BatchOp{Change: ch})
	jr.stats.Changes++
	jr.stats.Audit++
	return true, nil
}

// taskVersion is the stored version of the referral Task.
func (jr *journey) taskVersion() int {
	if s, ok := jr.stored["Task/"+jr.cr.Referral.TaskID]; ok {
		return s.version
	}
	return 1
}

// writeBacks queues a change's write-backs: each version, then the
// Provenance naming them (casework.writeBacks), pending.
func (jr *journey) writeBacks(ch *linkbridge.ReferralChange, written []*linkbridge.Resource, action string, actor linkbridge.Actor, t time.Time) error {
	rf := ch.Referral
	msg := func(typ, id string, version int, body []byte) *linkbridge.OutboxMessage {
		return &linkbridge.OutboxMessage{OrderKey: rf.PersonID, ReferralID: rf.ID, ResourceType: typ, ResourceID: id,
			Version: version, Body: body, NHSNumber: jr.cr.Person.NHSNumber, State: linkbridge.OutboxPending, AvailableAt: t, CreatedAt: t}
	}
	for _, r := range written {
		ch.Outbox = append(ch.Outbox, msg(r.Type, r.ID, r.VersionID, r.Body))
	}
	prov := jr.j.sys.WriteBackProvenance(rf, rf.Version, written, action, actor, t)
	body, err := jr.j.tpl.Encode(prov)
	if err != nil {
		return err
	}
	ch.Outbox = append(ch.Outbox, msg("Provenance", fhirmap.ID(prov), 1, body))
	jr.stats.Outbox += len(ch.Outbox)
	return nil
}

// actorName is who the history says made a change (casework's rule).
func actorName(r *linkbridge.Referral, a linkbridge.Actor) string {
	if a == linkbridge.ActorRequester {
		return string(a)
	}
	if r.LinkWorker.ID != "" {
		return r.LinkWorker.ID
	}
	return string(linkbridge.ActorPerformer)
}

// act is a lifecycle action (casework.Act).
func (jr *journey) act(t time.Time, cmd linkbridge.LifecycleCommand) (bool, error) {
	cmd.At = &t
	return jr.change(t, cmd.Action, linkbridge.ActorPerformer, func(cr *linkbridge.CaseRecord, ch *linkbridge.ReferralChange) error {
		if err := cr.Referral.Apply(&cmd, t); err != nil {
			return err
		}
		changed, err := cr.CloseGoals(&cmd)
		if changed {
			ch.Plan = &cr.Plan
		}
		return err
	})
}

// work runs the journey after intake, until it ends or reaches End.
func (jr *journey) work() error {
	r := jr.r
	lws := jr.j.workers[jr.svc]
	t := jr.cr.Referral.ReceivedAt
	// Declined by the service, or cancelled by the referrer, before
	// acceptance.
	switch x := r.IntN(100); {
	case x < 8:
		reason := []string{"out-of-area", "inappropriate-referral", "service-at-capacity", "duplicate-referral"}[r.IntN(4)]
		_, err := jr.act(jr.at(t, 1+r.IntN(5)), linkbridge.LifecycleCommand{Action: linkbridge.ActionDecline, ReasonCode: reason})
		return err
	case x < 12:
		at := jr.at(t, 1+r.IntN(3))
		_, err := jr.change(at, "task-cancelled", linkbridge.ActorRequester, func(cr *linkbridge.CaseRecord, _ *linkbridge.ReferralChange) error {
			cr.Referral.Status, cr.Referral.StatusReason = linkbridge.TaskCancelled, "Cancelled by the referrer"
			return nil
		})
		return err
	}
	lw := lws[r.IntN(len(lws))]
	if ok, err := jr.act(jr.at(t, 1+r.IntN(7)), linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: &lw}); !ok || err != nil {
		return err
	}
	if t = jr.cr.Referral.AcceptedAt; t.IsZero() {
		return fmt.Errorf("accept left no acceptedAt")
	}
	consent := linkbridge.ConsentFull
	switch x := r.IntN(100); {
	case x >= 90:
		consent = linkbridge.ConsentNone
	case x >= 55:
		consent = linkbridge.ConsentCodesOnly
	}
	t = t.Add(time.Duration(5+r.IntN(50)) * time.Minute)
	if ok, err := jr.change(t, "consent", linkbridge.ActorPerformer, func(cr *linkbridge.CaseRecord, _ *linkbridge.ReferralChange) error {
		return cr.SetConsent(consent)
	}); !ok || err != nil {
		return err
	}
	if r.IntN(100) < 5 {
		_, err := jr.act(jr.at(t, 3+r.IntN(8)), linkbridge.LifecycleCommand{Action: linkbridge.ActionDecline, ReasonCode: linkbridge.DeclinePerson})
		return err
	}
	contacts := seedContacts(r)
	holdAt := -1
	if r.IntN(100) < 8 && contacts > 2 {
		holdAt = 1 + r.IntN(contacts-1)
	}
	attended, baseline := 0, false
	day := 2 + r.IntN(10)
	for c := range contacts {
		if c == holdAt {
			if ok, err := jr.act(jr.at(t, day), linkbridge.LifecycleCommand{Action: linkbridge.ActionHold, Reason: "Person in hospital"}); !ok || err != nil {
				return err
			}
			day += 14 + r.IntN(14)
			if ok, err := jr.act(jr.at(t, day), linkbridge.LifecycleCommand{Action: linkbridge.ActionResume}); !ok || err != nil {
				return err
			}
			day += 1 + r.IntN(3)
		}
		at := jr.at(t, day)
		ct := linkbridge.Contact{ID: jr.ids.next(), At: at, Mode: seedMode(r, jr.cr.Referral.DoNotContact), Minutes: 20 + 5*r.IntN(10), Attended: r.IntN(10) != 0}
		if !ct.Attended {
			ct.Minutes = 0
		}
		if jr.cr.Referral.Status == linkbridge.TaskAccepted && !ct.Attended && c == contacts-1 {
			ct.Attended, ct.Minutes = true, 30 // the last chance to meet
		}
		recorded := at.Add(time.Duration(10+r.IntN(120)) * time.Minute)
		if ok, err := jr.change(recorded, "contact", linkbridge.ActorPerformer, func(cr *linkbridge.CaseRecord, ch *linkbridge.ReferralChange) error {
			if err := cr.AddContact(&ct, recorded); err != nil {
				return err
			}
			ch.Contacts = append(ch.Contacts, &ct)
			return nil
		}); !ok || err != nil {
			return err
		}
		if ct.Attended {
			attended++
		}
		if ct.Attended && !baseline {
			baseline = true
			if ok, err := jr.measures(at, linkbridge.TimepointBaseline); !ok || err != nil {
				return err
			}
		}
		if attended == 1 && ct.Attended && r.IntN(10) != 0 {
			if ok, err := jr.plan(at.Add(3 * time.Hour)); !ok || err != nil {
				return err
			}
		}
		day += 5 + r.IntN(10)
	}
	end := jr.at(t, day+r.IntN(14))
	switch x := r.IntN(100); {
	case attended == 0:
		_, err := jr.act(end, linkbridge.LifecycleCommand{Action: linkbridge.ActionFail, ReasonCode: "unable-to-contact", Reason: "No answer after three attempts"})
		return err
	case x < 6:
		_, err := jr.act(end, linkbridge.LifecycleCommand{Action: linkbridge.ActionCancel, Reason: "Moved out of the area"})
		return err
	case x < 12:
		_, err := jr.act(end, linkbridge.LifecycleCommand{Action: linkbridge.ActionFail, ReasonCode: "unable-to-contact", Reason: "Stopped answering"})
		return err
	}
	if r.IntN(10) < 7 && baseline {
		if ok, err := jr.measures(end.Add(-time.Hour), linkbridge.TimepointFinal); !ok || err != nil {
			return err
		}
	}
	reason := []string{"goals-met", "goals-met", "goals-met", "referred-on", "declined-further-support"}[r.IntN(5)]
	_, err := jr.act(end, linkbridge.LifecycleCommand{Action: linkbridge.ActionComplete, ReasonCode: reason,
		Summary: "Met weekly; now attends the walking group on their own."})
	return err
}

// seedContacts draws the number of contacts of an accepted referral:
// 0 to 14, most between 3 and 9 (the 6–12 norm is for those who engage).
func seedContacts(r *rand.Rand) int {
	if r.IntN(12) == 0 {
		return 0
	}
	n := 1
	for range 14 {
		if r.IntN(100) < 38 {
			n++
		}
	}
	return min(n, 14)
}

// seedMode draws a contact mode; do-not-contact allows no outreach.
func seedMode(r *rand.Rand, doNotContact bool) linkbridge.ContactMode {
	modes := []linkbridge.ContactMode{linkbridge.ContactFaceToFace, linkbridge.ContactPhone, linkbridge.ContactPhone, linkbridge.ContactVideo, linkbridge.ContactHomeVisit, linkbridge.ContactGroup}
	if doNotContact {
		modes = []linkbridge.ContactMode{linkbridge.ContactFaceToFace, linkbridge.ContactGroup}
	}
	return modes[r.IntN(len(modes))]
}

// measures records SWEMWBS and, for half the people, ONS4 at a timepoint
// (a final only of the instruments with a baseline).
func (jr *journey) measures(at time.Time, tp linkbridge.Timepoint) (bool, error) {
	r := jr.r
	var ms []*linkbridge.Measure
	insts := []linkbridge.Instrument{linkbridge.SWEMWBS}
	if tp == linkbridge.TimepointBaseline && r.IntN(2) == 0 {
		insts = append(insts, linkbridge.ONS4)
	}
	if tp != linkbridge.TimepointBaseline {
		insts = nil
		for _, m := range jr.cr.Measures {
			if m.Timepoint == linkbridge.TimepointBaseline && !slices.Contains(insts, m.Instrument) {
				insts = append(insts, m.Instrument)
			}
		}
	}
	for _, in := range insts {
		m := &linkbridge.Measure{ID: jr.ids.next(), Instrument: in, Timepoint: tp, TakenAt: at}
		switch in {
		case linkbridge.SWEMWBS:
			lo := 1 // later answers lean higher: wellbeing improves for most
			if tp != linkbridge.TimepointBaseline {
				lo += r.IntN(2)
			}
			for range 7 {
				m.Items = append(m.Items, lo+r.IntN(5-lo+1))
			}
		case linkbridge.ONS4:
			for range 4 {
				m.Items = append(m.Items, r.IntN(11))
			}
		}
		ms = append(ms, m)
	}
	for _, m := range ms {
		recorded := at.Add(time.Duration(1+r.IntN(30)) * time.Minute)
		if ok, err := jr.change(recorded, "measure", linkbridge.ActorPerformer, func(cr *linkbridge.CaseRecord, ch *linkbridge.ReferralChange) error {
			if err := cr.AddMeasure(m, recorded); err != nil {
				return err
			}
			ch.Measures = append(ch.Measures, m)
			return nil
		}); !ok || err != nil {
			return ok, err
		}
	}
	return true, nil
}

// plan writes the care and support plan: what matters and 1 to 4 goals.
func (jr *journey) plan(at time.Time) (bool, error) {
	r := jr.r
	p := linkbridge.Plan{WhatMatters: "Getting out of the house and seeing people again.",
		ReviewDate: at.AddDate(0, 2, 0).Format(time.DateOnly)}
	for _, g := range r.Perm(len(seedGoals))[:1+r.IntN(4)] {
		p.Goals = append(p.Goals, linkbridge.Goal{Description: seedGoals[g], Importance: 5 + r.IntN(6), Confidence: 3 + r.IntN(8), Status: linkbridge.GoalActive})
	}
	if r.IntN(3) == 0 {
		p.Actions = append(p.Actions, linkbridge.PlanAction{Description: "Ring the walking group leader", Who: "person", Status: "not-started"})
	}
	return jr.change(at, "plan", linkbridge.ActorPerformer, func(cr *linkbridge.CaseRecord, ch *linkbridge.ReferralChange) error {
		if err := cr.SetPlan(p, at, jr.ids.next); err != nil {
			return err
		}
		ch.Plan = &cr.Plan
		return nil
	})
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
