package fhirmap

import (
	"fmt"
	"slices"
	"strings"

	"github.com/linkbridge/linkbridge"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	hspb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/healthcare_service_go_proto"
	orgpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/organization_go_proto"
	patpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/patient_go_proto"
	prpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/practitioner_role_go_proto"
	srpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/service_request_go_proto"
	taskpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Entry is one resource of an inbound referral: a Bundle entry, a contained
// resource, or the body of a RESTful create.
type Entry struct {
	// FullURL is Bundle.entry.fullUrl ("urn:uuid:..." or absolute), if any.
	FullURL string
	// Resource is the resource proto (e.g. *patpb.Patient).
	Resource proto.Message
	// Path is where the entry sits in the request, for error messages,
	// e.g. "Bundle.entry[2]".
	Path string
	// Contained marks a resource found inside another's contained list;
	// it stays inside its container and is not stored on its own.
	Contained bool
	// Raw is the resource's JSON exactly as received, when the caller has
	// it (nil for contained resources). The gateway stores it, stamped
	// with id and meta, instead of re-marshalling Resource.
	Raw []byte
	// Normalised reports that mapping changed a value of Resource in place
	// (an NHS number written with spaces, an ODS code in lower case or
	// under the lower-case system), so Raw no longer matches it.
	Normalised bool
}

// Referral is an inbound referral after mapping and validation: the
// resources to store and the domain records they describe. Ids are not yet
// assigned.
type Referral struct {
	// Entries are every resource of the request, in order.
	Entries []*Entry
	// Patient is the entry holding the referred person's Patient, or nil
	// when the ServiceRequest points at a Patient the gateway already holds
	// (SubjectID) or names the person only by NHS number.
	Patient *Entry
	// SubjectID is the id of an already-stored Patient the request refers
	// to ("Patient/<id>" with no Patient in the request).
	SubjectID string
	// ServiceRequest is the referral's ServiceRequest entry.
	ServiceRequest *Entry
	// Task is the referral Task entry, or nil when the gateway must create
	// one.
	Task *Entry
	// Person and Referral are the domain records (ids unset).
	Person   linkbridge.Person
	Referral linkbridge.Referral
	// Follows are the referrals the sender says this one goes with:
	// ServiceRequest.basedOn and replaces that name a ServiceRequest, by
	// literal reference or by business identifier
	// (docs/domain.md#one-open-referral).
	Follows []FollowedReferral
}

// FollowedReferral is a ServiceRequest a referral's basedOn or replaces
// names: by id (a literal "ServiceRequest/<id>") or by its business
// identifier.
type FollowedReferral struct {
	ID         string
	Identifier linkbridge.Identifier
}

// Names reports whether f names the stored referral r.
func (f FollowedReferral) Names(r *linkbridge.Referral) bool {
	if f.ID != "" {
		return f.ID == r.ID
	}
	return f.Identifier.Value != "" && f.Identifier.Value == r.Identifier.Value &&
		(f.Identifier.System == "" || f.Identifier.System == r.Identifier.System)
}

// followed returns the ServiceRequests sr's basedOn and replaces name.
func followed(sr *srpb.ServiceRequest) []FollowedReferral {
	var out []FollowedReferral
	for _, ref := range append(append([]*dpb.Reference(nil), sr.GetBasedOn()...), sr.GetReplaces()...) {
		if typ, id := RefTarget(ref); typ == "ServiceRequest" && id != "" {
			out = append(out, FollowedReferral{ID: id})
			continue
		}
		if id := ref.GetIdentifier(); id.GetValue().GetValue() != "" {
			if t := ref.GetType().GetValue(); t != "" && t != "ServiceRequest" {
				continue
			}
			out = append(out, FollowedReferral{Identifier: linkbridge.Identifier{System: id.GetSystem().GetValue(), Value: id.GetValue().GetValue()}})
		}
	}
	return out
}

// index resolves references among the entries of one request.
type index struct {
	all    []*Entry
	byURL  map[string]*Entry
	byRef  map[string]*Entry
	byFrag map[string]*Entry
}

func newIndex(entries []*Entry) *index {
	ix := &index{all: entries, byURL: map[string]*Entry{}, byRef: map[string]*Entry{}, byFrag: map[string]*Entry{}}
	for _, e := range entries {
		typ, id := TypeName(e.Resource), ID(e.Resource)
		if e.Contained {
			ix.byFrag[id] = e
			continue
		}
		if e.FullURL != "" {
			ix.byURL[e.FullURL] = e
			// An absolute fullUrl ends in Type/id; relative references to
			// that resource use the tail.
			if i := strings.LastIndex(e.FullURL, "/"+typ+"/"); i >= 0 {
				ix.byRef[e.FullURL[i+1:]] = e
			}
		}
		if id != "" {
			ix.byRef[typ+"/"+id] = e
		}
	}
	return ix
}

// resolve finds the entry a reference points at, or nil.
func (ix *index) resolve(ref *dpb.Reference) *Entry {
	typ, id := RefTarget(ref)
	switch typ {
	case "":
		if id == "" {
			return nil
		}
		if e := ix.byURL[id]; e != nil {
			return e
		}
		return nil
	case "#":
		return ix.byFrag[id]
	default:
		return ix.byRef[typ+"/"+id]
	}
}

// ExpandContained appends the contained resources of each entry as entries
// of their own (marked Contained), so references like "#p1" resolve.
func ExpandContained(entries []*Entry) []*Entry {
	out := entries
	for _, e := range entries {
		for i, c := range Contained(e.Resource) {
			out = append(out, &Entry{Resource: c, Path: fmt.Sprintf("%s.contained[%d]", e.Path, i), Contained: true})
		}
	}
	return out
}

// MapReferral validates an inbound referral and maps it to the domain. It
// enforces the referral rules of linkbridge
// (docs/referral-exchange.md#referral-rules, docs/domain.md#snomed-ct-codes,
// docs/identifiers.md): exactly one ServiceRequest identifying a social
// prescribing referral, with status, intent, subject, requester, authoredOn
// and a business identifier; a Patient with a valid NHS number; SNOMED
// codes that pass Verhoeff; well-formed ODS codes; and, when a Task is sent,
// the SDOH referral Task rules. It normalises NHS numbers and ODS identifier
// systems in place. Errors are EUNPROCESSABLE (or EINVALID)
// *linkbridge.Error values naming the element.
func MapReferral(entries []*Entry) (*Referral, error) {
	return MapReferralWith(entries, Hints{})
}

// Hints are what the receiver knows of a referral besides its resources.
type Hints struct {
	// ClientODS is the ODS code of the authenticated sender's
	// organisation ("" when the request was not authenticated or the
	// sender is not a referring organisation).
	ClientODS string
	// ReceiverODS is the ODS code a BaRS message names as its receiver
	// (MessageHeader.destination.receiver), "" otherwise.
	ReceiverODS string
}

// MapReferralWith is MapReferral with what the receiver knows: the
// referring organisation is found, in order, from the requester chain
// (PractitionerRole → Organization, Organization, HealthcareService,
// contained ones), a Practitioner's PractitionerRole in the referral, the
// Task's requester, the one other organisation the referral names, the
// authenticated sender, and the Patient's registered practice; a requester
// that is the Patient or a RelatedPerson is a self-referral, and an
// organisation without an ODS code a voluntary-sector one (both without a
// referring ODS code). The service is the ServiceRequest's performer, the
// Task's owner, or the message's receiver
// (docs/referral-exchange.md#who-referred).
func MapReferralWith(entries []*Entry, h Hints) (*Referral, error) {
	entries = ExpandContained(entries)
	out := &Referral{Entries: entries}
	for _, e := range entries {
		if err := normaliseIdentifiers(e); err != nil {
			return nil, err
		}
		if err := checkSNOMED(e); err != nil {
			return nil, err
		}
	}
	ix := newIndex(entries)

	for _, e := range entries {
		switch e.Resource.(type) {
		case *srpb.ServiceRequest:
			if e.Contained && out.ServiceRequest != nil {
				continue
			}
			if out.ServiceRequest != nil && !out.ServiceRequest.Contained {
				return nil, linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "a referral carries exactly one ServiceRequest; found another at %s", e.Path).At("ServiceRequest")
			}
			out.ServiceRequest = e
		case *taskpb.Task:
			if out.Task != nil {
				return nil, linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "a referral carries at most one Task; found another at %s", e.Path).At("Task")
			}
			out.Task = e
		}
	}
	if out.ServiceRequest == nil {
		return nil, linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "a referral needs a ServiceRequest").At("ServiceRequest")
	}
	sr := out.ServiceRequest.Resource.(*srpb.ServiceRequest)
	if err := mapServiceRequest(sr, ix, out); err != nil {
		return nil, err
	}
	out.Follows = followed(sr)
	if out.Task != nil {
		if err := checkTask(out.Task.Resource.(*taskpb.Task), ix, out); err != nil {
			return nil, err
		}
	}
	if err := checkOnePatient(out, ix); err != nil {
		return nil, err
	}
	if err := mapReferrer(sr, ix, out, h); err != nil {
		return nil, err
	}
	if h.ReceiverODS != "" {
		switch svc := out.Referral.ServiceODS; {
		case svc == "":
			out.Referral.ServiceODS = h.ReceiverODS
		case !strings.EqualFold(svc, h.ReceiverODS):
			return nil, linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "MessageHeader.destination.receiver (%s) must be the service the referral is addressed to (%s)", h.ReceiverODS, svc).At("MessageHeader.destination.receiver")
		}
	}
	return out, nil
}

// mapReferrer finds who referred (see MapReferralWith) and records the
// referral's source.
func mapReferrer(sr *srpb.ServiceRequest, ix *index, out *Referral, h Hints) error {
	r := &out.Referral
	req := sr.GetRequester()
	if req == nil {
		return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "ServiceRequest.requester is required").At("ServiceRequest.requester")
	}
	typ := refType(req, ix)
	switch typ {
	case "Patient", "RelatedPerson":
		r.Source = linkbridge.SourceSelf
		return nil
	}
	ods := odsOf(req, ix, 0)
	if ods == "" && typ == "Organization" {
		// An organisation without an ODS code: voluntary, community and
		// social enterprise organisations have none.
		r.Source = linkbridge.SourceVoluntary
		return nil
	}
	if ods == "" && typ == "Practitioner" {
		ods = practitionerODS(req, ix)
	}
	if ods == "" && out.Task != nil {
		ods = odsOf(out.Task.Resource.(*taskpb.Task).GetRequester(), ix, 0)
	}
	if ods == "" {
		ods = otherOrganisationODS(sr, ix, out)
	}
	if ods == "" {
		ods = h.ClientODS
	}
	if ods == "" {
		ods = out.Person.GPODS
	}
	if ods == "" {
		return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "the referring organisation is not known: ServiceRequest.requester leads to no organisation with an ODS code (%s), nothing else in the referral names one, and the Patient has no registered practice; a self-referral names the Patient or a RelatedPerson as requester", linkbridge.ODSSystem).At("ServiceRequest.requester")
	}
	code, err := linkbridge.NormalizeODSCode(ods)
	if err != nil {
		return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "the referring organisation's ODS code %q is not valid", ods).At("ServiceRequest.requester")
	}
	r.ReferrerODS = code
	r.Source = linkbridge.SourceOfODS(code)
	if org, ok := entryOf(req, ix).(*orgpb.Organization); ok && isCommunityGroup(org) {
		r.Source = linkbridge.SourceVoluntary
	}
	return nil
}

// refType is the resource type a reference names: its target's in the
// request, its literal type, or its type element.
func refType(ref *dpb.Reference, ix *index) string {
	if e := ix.resolve(ref); e != nil {
		return TypeName(e.Resource)
	}
	if typ, _ := RefTarget(ref); typ != "" && typ != "#" {
		return typ
	}
	return ref.GetType().GetValue()
}

// entryOf is the resource a reference resolves to in the request, or nil.
func entryOf(ref *dpb.Reference, ix *index) proto.Message {
	if e := ix.resolve(ref); e != nil {
		return e.Resource
	}
	return nil
}

// practitionerODS is the organisation of a PractitionerRole in the
// request whose practitioner is the one ref names (UK Core examples name a
// Practitioner as requester and carry their PractitionerRole beside it).
func practitionerODS(ref *dpb.Reference, ix *index) string {
	target := ix.resolve(ref)
	_, tid := RefTarget(ref)
	for _, e := range ix.all {
		role, ok := e.Resource.(*prpb.PractitionerRole)
		if !ok || role.GetPractitioner() == nil {
			continue
		}
		same := target != nil && ix.resolve(role.GetPractitioner()) == target
		if !same && target == nil {
			_, id := RefTarget(role.GetPractitioner())
			same = id != "" && id == tid
		}
		if same {
			if ods := odsOf(role.GetOrganization(), ix, 1); ods != "" {
				return ods
			}
		}
	}
	return ""
}

// otherOrganisationODS is the ODS code of the one organisation the
// referral names besides the service (its performer and the Task's owner):
// an Organization in the request, or an organisation reference by ODS
// identifier. Two or more different ones say nothing for certain: "".
func otherOrganisationODS(sr *srpb.ServiceRequest, ix *index, out *Referral) string {
	service := map[string]bool{}
	for _, p := range sr.GetPerformer() {
		if ods := odsOf(p, ix, 0); ods != "" {
			service[strings.ToUpper(ods)] = true
		}
	}
	if out.Task != nil {
		if ods := odsOf(out.Task.Resource.(*taskpb.Task).GetOwner(), ix, 0); ods != "" {
			service[strings.ToUpper(ods)] = true
		}
	}
	found := map[string]bool{}
	for _, e := range ix.all {
		org, ok := e.Resource.(*orgpb.Organization)
		if !ok {
			continue
		}
		for _, id := range org.GetIdentifier() {
			if linkbridge.IsODSSystem(id.GetSystem().GetValue()) {
				if ods := strings.ToUpper(id.GetValue().GetValue()); !service[ods] {
					found[ods] = true
				}
			}
		}
	}
	// A Patient's registered practice is the person's GP, not a referrer:
	// it is the last resort, after the sender (MapReferralWith).
	if gp := strings.ToUpper(out.Person.GPODS); gp != "" && len(found) > 1 {
		delete(found, gp)
	}
	if len(found) != 1 {
		return ""
	}
	for ods := range found {
		return ods
	}
	return ""
}

// isCommunityGroup reports whether an Organization's type is a community
// group (R4 organization-type "cg"): a voluntary-sector organisation.
func isCommunityGroup(org *orgpb.Organization) bool {
	for _, t := range org.GetType() {
		if hasCoding(t, "http://terminology.hl7.org/CodeSystem/organization-type", "cg") {
			return true
		}
	}
	return false
}

// sameSubject reports whether ref (Task.for) names the person the
// ServiceRequest's subject names: the same Patient entry, the same held
// Patient, or the same NHS number.
func sameSubject(ref *dpb.Reference, ix *index, out *Referral) bool {
	if e := ix.resolve(ref); e != nil {
		return e == out.Patient
	}
	if typ, id := RefTarget(ref); typ != "" && typ != "#" {
		return typ == "Patient" && id == out.SubjectID && id != ""
	}
	if id := ref.GetIdentifier(); id.GetSystem().GetValue() == linkbridge.NHSNumberSystem {
		nhs, err := linkbridge.NormalizeNHSNumber(id.GetValue().GetValue())
		return err == nil && out.Person.NHSNumber != "" && nhs == out.Person.NHSNumber
	}
	return false
}

// checkOnePatient refuses a referral that carries a Patient other than its
// subject which nothing in the referral references: it would be stored as
// a person's record of its own, unrelated to the referral (one NHS number,
// two Patients).
func checkOnePatient(out *Referral, ix *index) error {
	referenced := map[*Entry]bool{}
	for _, e := range out.Entries {
		_ = walkRefs(e.Resource.ProtoReflect(), "", func(ref *dpb.Reference, _ func() string) error {
			if t := ix.resolve(ref); t != nil && t != e {
				referenced[t] = true
			}
			return nil
		})
	}
	for _, e := range out.Entries {
		if _, ok := e.Resource.(*patpb.Patient); ok && e != out.Patient && !referenced[e] {
			return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "a referral carries one Patient, its subject; %s is another that nothing in the referral refers to", e.Path).At(e.Path)
		}
	}
	return nil
}

func mapServiceRequest(sr *srpb.ServiceRequest, ix *index, out *Referral) error {
	r := &out.Referral
	status := Code(sr.GetStatus())
	if status != "active" {
		return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "a new referral must have ServiceRequest.status active, not %q", status).At("ServiceRequest.status")
	}
	r.RequestStatus = status
	switch intent := Code(sr.GetIntent()); intent {
	case "order", "original-order", "filler-order", "plan":
	default:
		return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "ServiceRequest.intent %q is not a referral order (order, original-order, filler-order or plan)", intent).At("ServiceRequest.intent")
	}
	if !isSocialPrescribing(sr) {
		return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "ServiceRequest does not identify a social prescribing referral: code or category must carry SNOMED CT %s", linkbridge.SCTReferralToSocialPrescribing).At("ServiceRequest.code")
	}
	for i, id := range sr.GetIdentifier() {
		if id.GetValue().GetValue() != "" {
			r.Identifier = linkbridge.Identifier{System: id.GetSystem().GetValue(), Value: id.GetValue().GetValue()}
			break
		}
		_ = i
	}
	if r.Identifier.Value == "" {
		return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "ServiceRequest needs a business identifier so that a re-sent referral is recognised").At("ServiceRequest.identifier")
	}
	if sr.GetAuthoredOn() == nil {
		return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "ServiceRequest.authoredOn is required").At("ServiceRequest.authoredOn")
	}
	r.AuthoredOn = DateTimeToTime(sr.GetAuthoredOn())
	r.Priority = Code(sr.GetPriority())
	if sr.GetRequester() == nil {
		return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "ServiceRequest.requester is required").At("ServiceRequest.requester")
	}
	for _, p := range sr.GetPerformer() {
		if ods := odsOf(p, ix, 0); ods != "" {
			r.ServiceODS = ods
			break
		}
	}
	for _, cc := range sr.GetReasonCode() {
		for _, c := range cc.GetCoding() {
			r.Reasons = append(r.Reasons, linkbridge.Coding{System: c.GetSystem().GetValue(), Code: c.GetCode().GetValue(), Display: c.GetDisplay().GetValue()})
		}
		if len(cc.GetCoding()) == 0 && cc.GetText().GetValue() != "" {
			r.Reasons = append(r.Reasons, linkbridge.Coding{Display: cc.GetText().GetValue()})
		}
	}
	for _, od := range sr.GetOrderDetail() {
		for _, c := range od.GetCoding() {
			if c.GetCode().GetValue() == "contacting-subject-prohibited" {
				r.DoNotContact = true
			}
		}
	}
	r.Status = linkbridge.TaskRequested

	// The subject: a Patient in the request, one the gateway holds, or an
	// NHS number identifier.
	subj := sr.GetSubject()
	if subj == nil {
		return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "ServiceRequest.subject is required").At("ServiceRequest.subject")
	}
	if e := ix.resolve(subj); e != nil {
		p, ok := e.Resource.(*patpb.Patient)
		if !ok {
			return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "ServiceRequest.subject must be a Patient, not %s", TypeName(e.Resource)).At("ServiceRequest.subject")
		}
		out.Patient = e
		return mapPatient(e, p, out)
	}
	if typ, id := RefTarget(subj); typ == "Patient" {
		out.SubjectID = id
		return nil
	} else if typ != "" && typ != "#" {
		return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "ServiceRequest.subject must be a Patient, not %s", typ).At("ServiceRequest.subject")
	}
	if id := subj.GetIdentifier(); id.GetSystem().GetValue() == linkbridge.NHSNumberSystem {
		nhs, err := linkbridge.NormalizeNHSNumber(id.GetValue().GetValue())
		if err != nil {
			return err.(*linkbridge.Error).At("ServiceRequest.subject.identifier.value")
		}
		if nhs != id.GetValue().GetValue() {
			out.ServiceRequest.Normalised = true
		}
		id.Value = &dpb.String{Value: nhs}
		out.Person.NHSNumber = nhs
		return nil
	}
	return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "ServiceRequest.subject does not resolve to a Patient in the request, on this server, or by NHS number").At("ServiceRequest.subject")
}

// mapPatient takes the person's NHS number (normalised in place) and GP.
func mapPatient(e *Entry, p *patpb.Patient, out *Referral) error {
	for i, id := range p.GetIdentifier() {
		if id.GetSystem().GetValue() != linkbridge.NHSNumberSystem {
			continue
		}
		nhs, err := linkbridge.NormalizeNHSNumber(id.GetValue().GetValue())
		if err != nil {
			return err.(*linkbridge.Error).At(fmt.Sprintf("Patient.identifier[%d].value", i))
		}
		if nhs != id.GetValue().GetValue() {
			e.Normalised = true
		}
		id.Value = &dpb.String{Value: nhs}
		out.Person.NHSNumber = nhs
		break
	}
	if out.Person.NHSNumber == "" {
		return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "Patient needs an NHS number identifier (system %s)", linkbridge.NHSNumberSystem).At("Patient.identifier")
	}
	if bd := p.GetBirthDate(); bd != nil {
		out.Person.BirthDate = DateTimeToTime(&dpb.DateTime{ValueUs: bd.GetValueUs()}).Format("2006-01-02")
	}
	for _, gp := range p.GetGeneralPractitioner() {
		if id := gp.GetIdentifier(); linkbridge.IsODSSystem(id.GetSystem().GetValue()) {
			out.Person.GPODS = id.GetValue().GetValue()
		}
	}
	return nil
}

// checkTask applies the SDOH "Task for Referral Management" rules to a Task
// sent with the referral.
func checkTask(t *taskpb.Task, ix *index, out *Referral) error {
	if Code(t.GetIntent()) != "order" {
		return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "referral Task.intent must be order, not %q", Code(t.GetIntent())).At("Task.intent")
	}
	if !hasCoding(t.GetCode(), TaskCodeSystem, "fulfill") {
		return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "referral Task.code must be %s#fulfill", TaskCodeSystem).At("Task.code")
	}
	st, err := linkbridge.InitialTaskStatus(linkbridge.TaskStatus(Code(t.GetStatus())))
	if err != nil {
		return err
	}
	if st == linkbridge.TaskReceived {
		st = linkbridge.TaskRequested
	}
	if st != linkbridge.TaskStatus(Code(t.GetStatus())) {
		SetCode(t.GetStatus(), string(st))
	}
	out.Referral.Status = st
	if t.GetFocus() == nil {
		return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "referral Task.focus must reference the ServiceRequest").At("Task.focus")
	}
	if e := ix.resolve(t.GetFocus()); e != out.ServiceRequest {
		return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "referral Task.focus does not resolve to the ServiceRequest of this referral").At("Task.focus")
	}
	if t.GetForValue() == nil {
		return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "referral Task.for is required").At("Task.for")
	}
	if !sameSubject(t.GetForValue(), ix, out) {
		return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "referral Task.for must be the ServiceRequest's subject").At("Task.for")
	}
	if t.GetAuthoredOn() == nil {
		return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "referral Task.authoredOn is required").At("Task.authoredOn")
	}
	if t.GetRequester() == nil {
		return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "referral Task.requester is required").At("Task.requester")
	}
	if owner := odsOf(t.GetOwner(), ix, 0); owner != "" {
		switch sr := out.Referral.ServiceODS; {
		case sr == "":
			out.Referral.ServiceODS = owner
		case !strings.EqualFold(sr, owner):
			return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "referral Task.owner (%s) must be the ServiceRequest's performer (%s)", owner, sr).At("Task.owner")
		}
	}
	if sr := t.GetStatusReason(); sr != nil {
		out.Referral.StatusReason = sr.GetText().GetValue()
	}
	return nil
}

// RequesterODS returns the ODS code of the organisation a ServiceRequest's
// requester leads to, found and normalised as MapReferral finds the
// referrer's: an identifier on the reference, or an Organization,
// PractitionerRole or HealthcareService among entries (a message's or
// transaction's entries, the ServiceRequest's own included) or contained in
// them. It returns "" when the requester leads to no valid ODS code.
func RequesterODS(sr *srpb.ServiceRequest, entries []*Entry) string {
	ods := odsOf(sr.GetRequester(), newIndex(ExpandContained(slices.Clip(entries))), 0)
	code, err := linkbridge.NormalizeODSCode(ods)
	if err != nil {
		return ""
	}
	return code
}

// odsOf follows a reference to an organisation's ODS code: an identifier on
// the reference itself, an Organization, a PractitionerRole's organization,
// or a HealthcareService's providedBy.
func odsOf(ref *dpb.Reference, ix *index, depth int) string {
	if ref == nil || depth > 3 {
		return ""
	}
	if id := ref.GetIdentifier(); linkbridge.IsODSSystem(id.GetSystem().GetValue()) {
		return id.GetValue().GetValue()
	}
	e := ix.resolve(ref)
	if e == nil {
		return ""
	}
	switch r := e.Resource.(type) {
	case *orgpb.Organization:
		for _, id := range r.GetIdentifier() {
			if linkbridge.IsODSSystem(id.GetSystem().GetValue()) {
				return id.GetValue().GetValue()
			}
		}
	case *prpb.PractitionerRole:
		return odsOf(r.GetOrganization(), ix, depth+1)
	case *hspb.HealthcareService:
		for _, id := range r.GetIdentifier() {
			if linkbridge.IsODSSystem(id.GetSystem().GetValue()) {
				return id.GetValue().GetValue()
			}
		}
		return odsOf(r.GetProvidedBy(), ix, depth+1)
	}
	return ""
}

// isSocialPrescribing reports whether the ServiceRequest's code or category
// carries a social prescribing referral code.
func isSocialPrescribing(sr *srpb.ServiceRequest) bool {
	ccs := append([]*dpb.CodeableConcept{sr.GetCode()}, sr.GetCategory()...)
	for _, cc := range ccs {
		for _, c := range cc.GetCoding() {
			if linkbridge.IsSocialPrescribingCode(linkbridge.Coding{System: c.GetSystem().GetValue(), Code: c.GetCode().GetValue()}) {
				return true
			}
		}
	}
	return false
}

func hasCoding(cc *dpb.CodeableConcept, system, code string) bool {
	for _, c := range cc.GetCoding() {
		if c.GetSystem().GetValue() == system && c.GetCode().GetValue() == code {
			return true
		}
	}
	return false
}

// normaliseIdentifiers rewrites the lower-case ODS system variant to the
// canonical one and checks and upper-cases every ODS code, in place.
func normaliseIdentifiers(e *Entry) error {
	return walk(e.Resource.ProtoReflect(), TypeName(e.Resource), func(m protoreflect.Message, path func() string) error {
		id, ok := m.Interface().(*dpb.Identifier)
		if !ok || !linkbridge.IsODSSystem(id.GetSystem().GetValue()) {
			return nil
		}
		code, err := linkbridge.NormalizeODSCode(id.GetValue().GetValue())
		if err != nil {
			return err.(*linkbridge.Error).At(path() + ".value")
		}
		if id.GetSystem().GetValue() != linkbridge.ODSSystem || id.GetValue().GetValue() != code {
			e.Normalised = true
		}
		id.System = &dpb.Uri{Value: linkbridge.ODSSystem}
		id.Value = &dpb.String{Value: code}
		return nil
	})
}

// checkSNOMED checks the Verhoeff check digit of every SNOMED CT code.
func checkSNOMED(e *Entry) error {
	return walk(e.Resource.ProtoReflect(), TypeName(e.Resource), func(m protoreflect.Message, path func() string) error {
		c, ok := m.Interface().(*dpb.Coding)
		if !ok || c.GetSystem().GetValue() != linkbridge.SNOMEDSystem {
			return nil
		}
		if !linkbridge.ValidSCTID(c.GetCode().GetValue()) {
			return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "SNOMED CT code is not a valid concept id (Verhoeff check failed)").At(path() + ".code")
		}
		return nil
	})
}

// PersonContact is what the link worker needs to reach the person: the
// name and contact details of the referral's Patient (official name first,
// the first phone and email in use, the home address).
type PersonContact struct {
	Name    string `json:"name,omitempty"`
	Phone   string `json:"phone,omitempty"`
	Email   string `json:"email,omitempty"`
	Address string `json:"address,omitempty"`
}

// PersonContactOf reads a PersonContact from a Patient; nil for another
// resource or a Patient with none of them.
func PersonContactOf(res proto.Message) *PersonContact {
	p, ok := res.(*patpb.Patient)
	if !ok {
		return nil
	}
	var out PersonContact
	for _, n := range p.GetName() {
		if n.GetPeriod().GetEnd() != nil {
			continue
		}
		var parts []string
		for _, g := range n.GetGiven() {
			parts = append(parts, g.GetValue())
		}
		if f := n.GetFamily().GetValue(); f != "" {
			parts = append(parts, f)
		}
		name := strings.Join(parts, " ")
		if name == "" {
			name = n.GetText().GetValue()
		}
		if name != "" && (out.Name == "" || Code(n.GetUse()) == "official") {
			out.Name = name
		}
	}
	for _, t := range p.GetTelecom() {
		if t.GetPeriod().GetEnd() != nil {
			continue
		}
		v := t.GetValue().GetValue()
		switch Code(t.GetSystem()) {
		case "phone":
			if out.Phone == "" {
				out.Phone = v
			}
		case "email":
			if out.Email == "" {
				out.Email = v
			}
		}
	}
	for _, a := range p.GetAddress() {
		if a.GetPeriod().GetEnd() != nil || out.Address != "" && Code(a.GetUse()) != "home" {
			continue
		}
		var parts []string
		for _, l := range a.GetLine() {
			parts = append(parts, l.GetValue())
		}
		for _, x := range []string{a.GetCity().GetValue(), a.GetPostalCode().GetValue()} {
			if x != "" {
				parts = append(parts, x)
			}
		}
		if len(parts) > 0 {
			out.Address = strings.Join(parts, ", ")
		}
	}
	if out == (PersonContact{}) {
		return nil
	}
	return &out
}
