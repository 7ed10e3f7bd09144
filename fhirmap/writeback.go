package fhirmap

import (
	"strings"
	"sync"

	"github.com/linkbridge/linkbridge"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// WritebackIdentifierSystem is the system of the write-back key each
// written-back resource carries (value "Type/id"), used for conditional
// updates on endpoints that refuse client-assigned ids: an identifier, or a
// meta.tag Coding for a type without an identifier element. It is the one
// under DefaultSystemBase; a deployment's own is its Systems.Writeback.
const WritebackIdentifierSystem = DefaultSystemBase + pathWriteback

// ForGPRecord prepares a copy of a stored resource for the patient's GP
// record. The GP record does not know the gateway's ids, so the patient is
// identified by NHS number (a logical Reference.identifier) and the referral
// by the referrer's own ServiceRequest identifier. Any other literal
// reference is offered to logical: a non-nil answer replaces it (a resource
// linkbridge does not write back, such as the referrer's PractitionerRole,
// is named by identifier and display: the endpoint does not hold it), nil
// keeps it (a resource linkbridge writes back: the relay rewrites it to the
// endpoint's own id before sending, docs/referral-exchange.md#write-back-identity).
// A nil logical keeps every other literal reference. meta is dropped (the
// GP endpoint keeps its own) and the resource gets its write-back key
// (SetWritebackKey): a writeback identifier, or for a type without an
// identifier element a meta.tag.
func (s Systems) ForGPRecord(res proto.Message, r *linkbridge.Referral, nhsNumber string, logical LogicalRefs) proto.Message {
	out := proto.Clone(res)
	m := out.ProtoReflect()
	if fd := m.Descriptor().Fields().ByName("meta"); fd != nil {
		m.Clear(fd)
	}
	patientRef := "Patient/" + r.Patient()
	referralRef := "ServiceRequest/" + r.ID
	_ = walkRefs(m, TypeName(out), func(ref *dpb.Reference, _ func() string) error {
		typ, id := RefTarget(ref)
		switch typ + "/" + id {
		case patientRef:
			clearLiteral(ref)
			ref.Type = &dpb.Uri{Value: "Patient"}
			ref.Identifier = &dpb.Identifier{System: &dpb.Uri{Value: linkbridge.NHSNumberSystem}, Value: &dpb.String{Value: nhsNumber}}
		case referralRef:
			clearLiteral(ref)
			ref.Type = &dpb.Uri{Value: "ServiceRequest"}
			ref.Identifier = &dpb.Identifier{System: &dpb.Uri{Value: r.Identifier.System}, Value: &dpb.String{Value: r.Identifier.Value}}
		default:
			if typ == "" || logical == nil {
				break
			}
			if lr := logical(typ, id); lr != nil {
				display := ref.GetDisplay()
				proto.Reset(ref)
				proto.Merge(ref, lr)
				if ref.Display == nil && display != nil {
					ref.Display = display
				}
			}
		}
		return nil
	})
	s.SetWritebackKey(out)
	return out
}

// writtenBack are the resource types linkbridge writes back to the GP
// record: the referral Task, the FHIR view of the case (CaseView) and the
// Provenance of each change.
var writtenBack = map[string]bool{"Task": true, "CarePlan": true, "Goal": true, "ServiceRequest": true,
	"Procedure": true, "Encounter": true, "Observation": true, "Provenance": true}

// WrittenBack tells whether linkbridge writes resources of type typ back to
// the GP record (so a literal reference to one can be rewritten to the
// endpoint's id once it is there).
func WrittenBack(typ string) bool { return writtenBack[typ] }

// LogicalRefs tells ForGPRecord how the GP copy refers to the resource
// Type/id: nil to keep the literal reference, or the reference to use.
type LogicalRefs func(typ, id string) *dpb.Reference

// Identifier systems a logical reference prefers, most specific first: the
// national identifiers of people and organisations in NHS England
// (docs/identifiers.md).
var logicalSystems = []string{
	"https://fhir.nhs.uk/Id/sds-user-id",
	"https://fhir.nhs.uk/Id/sds-role-profile-id",
	linkbridge.ODSSystem,
	linkbridge.NHSNumberSystem,
}

// LogicalRef is a logical reference to res for an endpoint that does not
// hold it (FHIR R4 references.html#logical): its type, its identifier (a
// national one when it has one: SDS user or role profile id, ODS code; else
// its first identifier with a system and value) and a display (its name, or
// the display of the practitioner or organisation a PractitionerRole
// names). A resource with neither an identifier nor a name gets its type and
// the display "<Type> not held in this record", so that no reference is
// left dangling.
func LogicalRef(res proto.Message) *dpb.Reference {
	typ := TypeName(res)
	ref := &dpb.Reference{Type: &dpb.Uri{Value: typ}}
	m := res.ProtoReflect()
	var ids []*dpb.Identifier
	if fd := m.Descriptor().Fields().ByName("identifier"); fd != nil && fd.IsList() {
		l := m.Get(fd).List()
		for i := 0; i < l.Len(); i++ {
			if id, ok := l.Get(i).Message().Interface().(*dpb.Identifier); ok && id.GetSystem().GetValue() != "" && id.GetValue().GetValue() != "" {
				ids = append(ids, id)
			}
		}
	}
	pick := func() *dpb.Identifier {
		for _, sys := range logicalSystems {
			for _, id := range ids {
				if id.GetSystem().GetValue() == sys {
					return id
				}
			}
		}
		if len(ids) > 0 {
			return ids[0]
		}
		return nil
	}
	if id := pick(); id != nil {
		ref.Identifier = &dpb.Identifier{System: id.System, Value: id.Value}
	}
	if d := displayOf(m); d != "" {
		ref.Display = &dpb.String{Value: d}
	} else if ref.Identifier == nil {
		ref.Display = &dpb.String{Value: typ + " not held in this record"}
	}
	return ref
}

// displayOf is a resource's name for a reference display: name (a string,
// or a HumanName's text, else given and family names), or for a
// PractitionerRole the display of its practitioner, else its organization.
func displayOf(m protoreflect.Message) string {
	fd := m.Descriptor().Fields().ByName("name")
	if fd != nil {
		v := m.Get(fd)
		switch {
		case fd.IsList() && v.List().Len() > 0:
			if hn, ok := v.List().Get(0).Message().Interface().(*dpb.HumanName); ok {
				if hn.GetText().GetValue() != "" {
					return hn.GetText().GetValue()
				}
				var parts []string
				for _, g := range hn.GetGiven() {
					parts = append(parts, g.GetValue())
				}
				if hn.GetFamily().GetValue() != "" {
					parts = append(parts, hn.GetFamily().GetValue())
				}
				return strings.Join(parts, " ")
			}
		case !fd.IsList() && fd.Kind() == protoreflect.MessageKind && m.Has(fd):
			if s, ok := v.Message().Interface().(*dpb.String); ok {
				return s.GetValue()
			}
		}
	}
	for _, name := range []protoreflect.Name{"practitioner", "organization"} {
		if fd := m.Descriptor().Fields().ByName(name); fd != nil && !fd.IsList() && m.Has(fd) {
			if r, ok := m.Get(fd).Message().Interface().(*dpb.Reference); ok && r.GetDisplay().GetValue() != "" {
				return r.GetDisplay().GetValue()
			}
		}
	}
	return ""
}

// WritebackKeyParam is the search parameter a conditional update of a
// written-back resource of type typ uses: "identifier" when the R4 type has
// a repeating identifier element (the key is a business identifier), else
// "_tag" (the key is a meta.tag Coding; _tag is a search parameter of every
// resource, FHIR R4 search.html#tag). Provenance is the written-back type
// without an identifier.
func WritebackKeyParam(typ string) string {
	if hasIdentifier()[typ] {
		return "identifier"
	}
	return "_tag"
}

// WritebackToken is the token (system|value) that finds the written-back
// copy of Type/id with the parameter WritebackKeyParam names.
func (s Systems) WritebackToken(typ, id string) string {
	return s.Writeback() + "|" + typ + "/" + id
}

// SetWritebackKey gives a resource its write-back key "Type/id" in
// Writeback(), unless it already has one: an identifier when
// its type has a repeating identifier element, else a meta.tag Coding (system
// Writeback(), code "Type/id"). It decides from the
// resource's descriptor, so every type is keyed the way WritebackKeyParam
// searches for it.
func (s Systems) SetWritebackKey(res proto.Message) {
	sys := s.Writeback()
	m := res.ProtoReflect()
	key := TypeName(res) + "/" + ID(res)
	if keyedByIdentifier(m.Descriptor()) {
		l := m.Mutable(m.Descriptor().Fields().ByName("identifier")).List()
		for i := 0; i < l.Len(); i++ {
			if id, ok := l.Get(i).Message().Interface().(*dpb.Identifier); ok && id.GetSystem().GetValue() == sys {
				return
			}
		}
		wid := &dpb.Identifier{System: &dpb.Uri{Value: sys}, Value: &dpb.String{Value: key}}
		l.Append(protoreflect.ValueOfMessage(wid.ProtoReflect()))
		return
	}
	fd := m.Descriptor().Fields().ByName("meta")
	if fd == nil {
		return
	}
	meta, _ := m.Mutable(fd).Message().Interface().(*dpb.Meta)
	if meta == nil {
		return
	}
	for _, c := range meta.GetTag() {
		if c.GetSystem().GetValue() == sys {
			return
		}
	}
	meta.Tag = append(meta.Tag, &dpb.Coding{System: &dpb.Uri{Value: sys}, Code: &dpb.Code{Value: key}})
}

// keyedByIdentifier tells whether a resource type carries its write-back
// key as an identifier: it has a repeating identifier element (Identifier
// 0..*), so the key sits beside the resource's own identifiers. A type
// without one (Provenance) or with a single identifier (Bundle) is keyed
// by meta.tag.
func keyedByIdentifier(md protoreflect.MessageDescriptor) bool {
	fd := md.Fields().ByName("identifier")
	return fd != nil && fd.IsList() && fd.Kind() == protoreflect.MessageKind &&
		fd.Message().FullName() == (*dpb.Identifier)(nil).ProtoReflect().Descriptor().FullName()
}

// hasIdentifier maps every R4 resource type to keyedByIdentifier, read once
// from the ContainedResource descriptor.
var hasIdentifier = sync.OnceValue(func() map[string]bool {
	descs := resourceDescriptors()
	out := make(map[string]bool, len(descs))
	for typ, md := range descs {
		out[typ] = keyedByIdentifier(md)
	}
	return out
})

// PointPatientAt adds a literal reference to the GP's own Patient (found by
// NHS number on the GP endpoint) to every logical reference to the person.
func PointPatientAt(res proto.Message, nhsNumber, gpPatientID string) {
	_ = walkRefs(res.ProtoReflect(), TypeName(res), func(ref *dpb.Reference, _ func() string) error {
		id := ref.GetIdentifier()
		if id.GetSystem().GetValue() == linkbridge.NHSNumberSystem && id.GetValue().GetValue() == nhsNumber {
			setRefTarget(ref, "Patient", gpPatientID)
		}
		return nil
	})
}

func clearLiteral(ref *dpb.Reference) {
	m := ref.ProtoReflect()
	if fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("reference")); fd != nil {
		m.Clear(fd)
	}
}
