package fhirmap

import (
	"net/url"
	"strings"

	"github.com/linkbridge/linkbridge"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	"google.golang.org/protobuf/proto"
)

// DefaultSystemBase is the base of the URIs linkbridge mints when a
// deployment sets none (serve --system-base). It is an example domain: a
// deployment sets its own, which it controls, before it first writes back.
// It stays the default because deployments that started with it carry it
// in every GP record they wrote to, and their write-back key must not
// change (docs/identifiers.md#linkbridges-own-uris).
const DefaultSystemBase = "https://linkbridge.example.org"

// SDSUserIDSystem is the identifier system of NHS Spine Directory Service
// user ids, which identify a practitioner (a link worker with an NHS
// smartcard) nationally (docs/identifiers.md#link-workers).
const SDSUserIDSystem = "https://fhir.nhs.uk/Id/sds-user-id"

// Paths of linkbridge's own URIs under a system base
// (docs/identifiers.md#linkbridges-own-uris).
const (
	pathWriteback               = "/Id/writeback"
	pathClient                  = "/Id/client"
	pathLinkWorker              = "/Id/link-worker"
	pathReferral                = "/Id/referral"
	pathONS4                    = "/fhir/CodeSystem/ons4"
	pathOutcome                 = "/fhir/CodeSystem/outcome-measure"
	pathBusinessStatus          = "/fhir/CodeSystem/referral-business-status"
	pathDeclineReason           = "/fhir/CodeSystem/decline-reason"
	pathDischargeReason         = "/fhir/CodeSystem/discharge-reason"
	pathExtTimepoint            = "/fhir/StructureDefinition/outcome-timepoint"
	pathExtGoalImportance       = "/fhir/StructureDefinition/goal-importance"
	pathExtGoalConfidence       = "/fhir/StructureDefinition/goal-confidence"
	pathExtOnwardReferralStatus = "/fhir/StructureDefinition/onward-referral-status"
)

// Systems are the URIs linkbridge mints — its identifier systems, code
// systems and extension URLs — under one deployment's base. The zero value
// is the default (DefaultSystemBase); NewSystems makes a deployment's own.
// Every production path that writes one of them takes a Systems from the
// configuration (serve --system-base), so a deployment writes its own URIs.
type Systems struct {
	// base is the base without a trailing slash; "" is DefaultSystemBase.
	base string
}

// NewSystems returns the URIs under base: an absolute http or https URL
// with a host and no query or fragment (a trailing slash is dropped). An
// empty base is the default.
func NewSystems(base string) (Systems, error) {
	if base == "" {
		return Systems{}, nil
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(base, " \t\r\n|") {
		return Systems{}, linkbridge.Errorf(linkbridge.EINVALID, "system base %q is not an absolute http(s) URL without query or fragment", base)
	}
	base = strings.TrimRight(base, "/")
	if base == DefaultSystemBase {
		return Systems{}, nil
	}
	return Systems{base: base}, nil
}

// Base returns the base the URIs are under.
func (s Systems) Base() string {
	if s.base == "" {
		return DefaultSystemBase
	}
	return s.base
}

// IsDefault reports whether the URIs are under DefaultSystemBase.
func (s Systems) IsDefault() bool { return s.base == "" }

// Writeback is the system of the write-back key each written-back resource
// carries (value "Type/id"): an identifier, or a meta.tag Coding for a type
// without an identifier element. It is the key of conditional updates on
// the GP endpoint: it must never change once a deployment has written back.
func (s Systems) Writeback() string { return s.Base() + pathWriteback }

// Client is the identifier system of registered client ids in
// AuditEvent.agent.who.
func (s Systems) Client() string { return s.Base() + pathClient }

// LinkWorker is the identifier system of link workers known only by the
// service's own id (one without an SDS user id).
func (s Systems) LinkWorker() string { return s.Base() + pathLinkWorker }

// ONS4 is the CodeSystem of the ONS4 personal wellbeing questions.
func (s Systems) ONS4() string { return s.Base() + pathONS4 }

// Outcome is the CodeSystem of the parts of the other outcome measures
// with no confirmed national code.
func (s Systems) Outcome() string { return s.Base() + pathOutcome }

// BusinessStatus is the CodeSystem of Task.businessStatus.
func (s Systems) BusinessStatus() string { return s.Base() + pathBusinessStatus }

// DeclineReason is the CodeSystem of decline reasons in Task.statusReason.
func (s Systems) DeclineReason() string { return s.Base() + pathDeclineReason }

// DischargeReason is the CodeSystem of discharge reasons in
// Task.statusReason.
func (s Systems) DischargeReason() string { return s.Base() + pathDischargeReason }

// ExtTimepoint is the extension marking an outcome Observation as
// baseline, review or final.
func (s Systems) ExtTimepoint() string { return s.Base() + pathExtTimepoint }

// ExtGoalImportance is the extension carrying a Goal's 1–10 importance.
func (s Systems) ExtGoalImportance() string { return s.Base() + pathExtGoalImportance }

// ExtGoalConfidence is the extension carrying a Goal's 1–10 confidence.
func (s Systems) ExtGoalConfidence() string { return s.Base() + pathExtGoalConfidence }

// ExtOnwardReferralStatus is the extension carrying an onward referral's
// own status on its ServiceRequest.
func (s Systems) ExtOnwardReferralStatus() string { return s.Base() + pathExtOnwardReferralStatus }

// SystemURI is one URI linkbridge mints, for documentation and checks.
type SystemURI struct {
	// Kind is "identifier", "code system" or "extension".
	Kind string
	// URI is the URI under the Systems' base.
	URI string
}

// All lists every URI linkbridge mints under the base, in the order
// docs/identifiers.md lists them.
func (s Systems) All() []SystemURI {
	return []SystemURI{
		{"identifier", s.Writeback()}, {"identifier", s.LinkWorker()}, {"identifier", s.Client()}, {"identifier", s.Referral()},
		{"code system", s.ONS4()}, {"code system", s.Outcome()}, {"code system", s.BusinessStatus()},
		{"extension", s.ExtTimepoint()}, {"extension", s.ExtGoalImportance()},
		{"extension", s.ExtGoalConfidence()}, {"extension", s.ExtOnwardReferralStatus()},
	}
}

// Referral is the identifier system of the referrals the service itself
// opens (an episode reopened by a link worker): ServiceRequest.identifier.
func (s Systems) Referral() string { return s.Base() + pathReferral }

// LinkWorkerIdentifier is how a link worker is identified in a FHIR
// reference: by SDS user id (SDSUserIDSystem) when known, else by the
// service's own id in LinkWorker().
func (s Systems) LinkWorkerIdentifier(lw linkbridge.LinkWorker) (system, value string) {
	if lw.SDSUserID != "" {
		return SDSUserIDSystem, lw.SDSUserID
	}
	return s.LinkWorker(), lw.ID
}

// IsLinkWorkerSystem reports whether an identifier system names a link
// worker: an SDS user id, or the deployment's own link-worker system.
func (s Systems) IsLinkWorkerSystem(system string) bool {
	return system == SDSUserIDSystem || system == s.LinkWorker()
}

// local returns a copy of a coding of the package's shared tables, which
// are written under DefaultSystemBase, with its system moved under s's
// base: no two resources share a message, and a deployment's codes are
// its own.
func (s Systems) local(c *dpb.Coding) *dpb.Coding {
	out := proto.Clone(c).(*dpb.Coding)
	if sys := out.GetSystem().GetValue(); s.base != "" && strings.HasPrefix(sys, DefaultSystemBase+"/") {
		out.System = &dpb.Uri{Value: s.base + strings.TrimPrefix(sys, DefaultSystemBase)}
	}
	return out
}

// String returns the base.
func (s Systems) String() string { return s.Base() }
