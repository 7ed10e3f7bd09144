package linkbridge

import "time"

// Social prescribing SNOMED CT concepts (docs/domain.md#snomed-ct-codes).
const (
	// SCTReferralToSocialPrescribing is "Referral to social prescribing
	// service (procedure)": identifies a social prescribing referral, and is
	// written to the GP record when the person accepts.
	SCTReferralToSocialPrescribing = "871731000000106"
	// SCTSocialPrescribingDeclined is "Social prescribing declined
	// (situation)", written to the GP record on decline.
	SCTSocialPrescribingDeclined = "871711000000103"
	// EMISLocalSocialPrescribingReferral is the EMIS-local code "Referral to
	// social prescribing service from other agency" seen in real extracts; it
	// is tolerated on input as identifying a social prescribing referral.
	EMISLocalSocialPrescribingReferral = "EMISNQRE582"
)

// Coding is a code from a code system, as in FHIR Coding.
type Coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

// Identifier is a business identifier, as in FHIR Identifier.
type Identifier struct {
	System string `json:"system,omitempty"`
	Value  string `json:"value"`
}

// String renders the identifier as a FHIR token "system|value".
func (i Identifier) String() string { return i.System + "|" + i.Value }

// ParseToken splits a FHIR search token "system|value" (or a bare value)
// at its first unescaped "|" and reads the escapes of each part (CutToken).
func ParseToken(s string) Identifier {
	sys, val, _ := CutToken(s)
	return Identifier{System: sys, Value: val}
}

// Person is someone referred to social prescribing. Its ID is also the id of
// the FHIR Patient resource the gateway serves for them. Names and other
// demographics stay in that stored resource; the domain keeps only what the
// workflow needs.
type Person struct {
	ID        string    `json:"id"`
	NHSNumber string    `json:"nhsNumber"`
	BirthDate string    `json:"birthDate,omitempty"`
	GPODS     string    `json:"gpOds,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
}

// Validate checks the person's identifiers without I/O.
func (p *Person) Validate() error {
	if p.ID == "" {
		return Errorf(EINVALID, "person has no id")
	}
	if _, err := NormalizeNHSNumber(p.NHSNumber); err != nil {
		return err
	}
	return nil
}

// Referral is one referral of a person to a social prescribing service, as
// the link worker's system of record holds it.
type Referral struct {
	// ID is the gateway's id of the referral; it is also the id of the FHIR
	// ServiceRequest resource that carries it.
	ID string `json:"id"`
	// TaskID is the id of the referral Task that tracks it.
	TaskID string `json:"taskId"`
	// PersonID is the referred person: one identity per NHS number, kept
	// internally (it orders the person's write-backs).
	PersonID string `json:"personId"`
	// PatientID is this referral's own Patient resource: what its referrer
	// sent about the person. A person referred by several organisations
	// has one Patient per referral, each disclosed only to that referral's
	// parties (docs/referral-exchange.md#disclosure). Referrals stored
	// before it existed have the person's id here.
	PatientID string `json:"patientId,omitempty"`
	// Identifier is the referrer's business identifier of the ServiceRequest;
	// a second referral with the same identifier is the same referral.
	Identifier Identifier `json:"identifier"`
	// Status is the referral Task status: the workflow state.
	Status TaskStatus `json:"status"`
	// BusinessStatus is a finer, local workflow step (Task.businessStatus).
	BusinessStatus string `json:"businessStatus,omitempty"`
	// StatusReason explains rejected, cancelled, on-hold and failed states.
	StatusReason string `json:"statusReason,omitempty"`
	// RequestStatus is the ServiceRequest status set by the requester
	// (active, revoked, completed, ...).
	RequestStatus string `json:"requestStatus"`
	// Priority is routine, urgent, asap or stat.
	Priority string `json:"priority,omitempty"`
	// ReferrerODS is the ODS code of the referring organisation; "" for a
	// referral from no organisation with an ODS code (a self-referral, a
	// voluntary-sector organisation), which only the service reads.
	ReferrerODS string `json:"referrerOds"`
	// Source is where the referral came from (ReferralSources).
	Source ReferralSource `json:"source,omitempty"`
	// ServiceODS is the ODS code of the social prescribing service the
	// referral is addressed to.
	ServiceODS string `json:"serviceOds"`
	// Reasons are the coded reasons for referral (ServiceRequest.reasonCode).
	Reasons []Coding `json:"reasons,omitempty"`
	// DoNotContact records the SDOH "contacting-subject-prohibited" flag.
	DoNotContact bool `json:"doNotContact,omitempty"`
	// LinkWorker is the link worker who accepted the referral.
	LinkWorker LinkWorker `json:"linkWorker,omitempty"`
	// Consent is what the person agreed may be shared with the GP record;
	// until recorded, only codes and statuses are shared.
	Consent ConsentLevel `json:"consent,omitempty"`
	// DeclineReason and DischargeReason are coded reasons (DeclineReasons,
	// DischargeReasons); DischargeSummary is the free-text summary.
	DeclineReason    string `json:"declineReason,omitempty"`
	DischargeReason  string `json:"dischargeReason,omitempty"`
	DischargeSummary string `json:"dischargeSummary,omitempty"`
	// AcceptedAt and CompletedAt mark the episode (zero until set): when
	// the service accepted the referral and when the episode ended.
	AcceptedAt  time.Time `json:"acceptedAt,omitzero"`
	CompletedAt time.Time `json:"completedAt,omitzero"`
	// AgreedAt is when the person agreed to take part (an explicit agree
	// action, or the first attended contact), and AgreedBy the link worker
	// who held the case then: the moment "Referral to social prescribing
	// service" is coded, once per episode (docs/domain.md#coding-the-episode).
	AgreedAt time.Time  `json:"agreedAt,omitzero"`
	AgreedBy LinkWorker `json:"agreedBy,omitzero"`
	// PersonDeclinedAt is when the person declined the referral before
	// agreeing to take part: the moment "Social prescribing declined" is
	// coded. A service declining a referral (out of area, at capacity) is
	// not the person declining and is not coded so.
	PersonDeclinedAt time.Time `json:"personDeclinedAt,omitzero"`
	// Link ties this referral to another of the same person and service:
	// the earlier episode it follows (a re-referral, or an episode
	// reopened), or an open referral it stands beside (docs/domain.md#one-open-referral).
	Link ReferralLink `json:"link,omitzero"`
	// AuthoredOn is when the referrer wrote the referral.
	AuthoredOn time.Time `json:"authoredOn,omitzero"`
	// ReceivedAt is when the gateway stored it.
	ReceivedAt time.Time `json:"receivedAt,omitzero"`
	// UpdatedAt is when the referral last changed.
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
	// Version counts changes to the referral, starting at 1.
	Version int `json:"version"`
}

// ReferralSource is where a referral came from: the referral routes of
// social prescribing (docs/domain.md#referral-sources).
type ReferralSource string

// Referral sources.
const (
	// SourceGPPractice is a GP practice (ODS code of one letter and five
	// digits).
	SourceGPPractice ReferralSource = "gp-practice"
	// SourcePharmacy is a community pharmacy (ODS code starting F).
	SourcePharmacy ReferralSource = "pharmacy"
	// SourceOtherStatutory is any other organisation with an ODS code:
	// hospital trusts, community services, job centres, councils' social
	// care and housing.
	SourceOtherStatutory ReferralSource = "other-statutory"
	// SourceVoluntary is a voluntary, community or social enterprise
	// (VCSE) organisation; most have no ODS code.
	SourceVoluntary ReferralSource = "voluntary-sector"
	// SourceSelf is the person (or someone close to them) referring
	// themselves.
	SourceSelf ReferralSource = "self-referral"
)

// ReferralSources are the known sources.
var ReferralSources = []ReferralSource{SourceGPPractice, SourcePharmacy, SourceOtherStatutory, SourceVoluntary, SourceSelf}

// WithoutODS reports whether a referral from this source may have no
// referring organisation ODS code: a self-referral or a voluntary-sector
// one. Such a referral is the service's alone to read and change.
func (s ReferralSource) WithoutODS() bool { return s == SourceSelf || s == SourceVoluntary }

// SourceOfODS classifies an organisation's ODS code: a GP practice (one
// letter and five digits), a pharmacy (F and four more characters), or
// another statutory organisation.
func SourceOfODS(ods string) ReferralSource {
	switch {
	case len(ods) == 6 && ods[0] >= 'A' && ods[0] <= 'Z' && allDigits(ods[1:]):
		return SourceGPPractice
	case len(ods) == 5 && ods[0] == 'F':
		return SourcePharmacy
	}
	return SourceOtherStatutory
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Patient is the id of the referral's Patient resource: PatientID, or the
// person's id for a referral that has none of its own.
func (r *Referral) Patient() string {
	if r.PatientID != "" {
		return r.PatientID
	}
	return r.PersonID
}

// Validate checks the referral's own rules without I/O.
func (r *Referral) Validate() error {
	switch {
	case r.ID == "" || r.TaskID == "" || r.PersonID == "":
		return Errorf(EINVALID, "referral needs ids for itself, its Task and its person")
	case r.Identifier.Value == "":
		return Errorf(EUNPROCESSABLE, "referral has no business identifier").At("ServiceRequest.identifier")
	case r.ReferrerODS == "" && !r.Source.WithoutODS():
		return Errorf(EUNPROCESSABLE, "referral does not name the referring organisation by ODS code").At("ServiceRequest.requester")
	case r.ServiceODS == "":
		return Errorf(EUNPROCESSABLE, "referral does not name the social prescribing service by ODS code").At("ServiceRequest.performer")
	case r.AuthoredOn.IsZero():
		return Errorf(EUNPROCESSABLE, "referral has no authoredOn").At("ServiceRequest.authoredOn")
	case !r.Status.Valid():
		return Errorf(EUNPROCESSABLE, "referral has an unknown status %q", r.Status).At("Task.status")
	}
	return nil
}

// IsSocialPrescribingCode reports whether a coding identifies a social
// prescribing referral: SNOMED 871731000000106, or the EMIS local code that
// real GP systems send.
func IsSocialPrescribingCode(c Coding) bool {
	switch {
	case c.System == SNOMEDSystem && c.Code == SCTReferralToSocialPrescribing:
		return true
	case c.Code == EMISLocalSocialPrescribingReferral:
		return true
	}
	return false
}

// LinkKind says how a referral is linked to another of the same person and
// service (docs/domain.md#one-open-referral).
type LinkKind string

// Link kinds.
const (
	// LinkReReferral: a new referral received after an earlier episode
	// with the service closed; it follows that episode.
	LinkReReferral LinkKind = "re-referral"
	// LinkReopened: the link worker reopened a closed episode; the new
	// episode continues it.
	LinkReopened LinkKind = "reopened"
	// LinkRelated: the sender said the referral goes with an open one
	// (ServiceRequest.basedOn or replaces names it); both stay open.
	LinkRelated LinkKind = "related"
	// LinkConcurrent: the person has an open referral to the service that
	// the sender may not see; the new one is accepted without saying so
	// and flagged for the link worker (docs/domain.md#one-open-referral).
	LinkConcurrent LinkKind = "concurrent"
)

// ReferralLink names the referral another is linked to, and how.
type ReferralLink struct {
	ReferralID string   `json:"referralId"`
	Kind       LinkKind `json:"kind"`
}

// RuleOpenReferral is the Error.Rule of a referral refused because its
// person has an open referral to the same service (Error.Existing names
// it as "ServiceRequest/<id>").
const RuleOpenReferral = "open-referral"

// OpenKey returns the key under which a store allows one open referral per
// person and service: "<person id>|<service ODS>" while the referral is open
// (its Task not terminal, its ServiceRequest not ended) and stands alone,
// "" otherwise (closed, or linked beside an open referral: related or
// concurrent). Stores keep OpenKey unique, so that two open referrals of a
// person to a service are refused atomically (docs/domain.md#one-open-referral).
func (r *Referral) OpenKey() string {
	if r.Status.Terminal() || r.Link.Kind == LinkRelated || r.Link.Kind == LinkConcurrent {
		return ""
	}
	switch r.RequestStatus {
	case "revoked", "entered-in-error", "completed":
		return ""
	}
	return r.PersonID + "|" + r.ServiceODS
}

// OpenReferralConflict returns the error for a referral refused because the
// person's open referral existingID stands in its way.
func OpenReferralConflict(existingID string) *Error {
	e := Errorf(ECONFLICT, "the person has an open referral to this service: ServiceRequest/%s (to send another beside it, name it in ServiceRequest.basedOn)", existingID).At("ServiceRequest.subject")
	e.Existing, e.Rule = "ServiceRequest/"+existingID, RuleOpenReferral
	return e
}

// Reopenable reports, as ECONFLICT, why a referral cannot be reopened: only
// a completed, failed or cancelled episode can (docs/domain.md#one-open-referral).
func (r *Referral) Reopenable() error {
	switch r.Status {
	case TaskCompleted, TaskFailed, TaskCancelled:
		return nil
	}
	return Errorf(ECONFLICT, "only a completed, failed or cancelled referral can be reopened; this one is %s", r.Status).At("action")
}
