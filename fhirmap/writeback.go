package fhirmap

import (
	"github.com/linkbridge/linkbridge"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// WritebackIdentifierSystem is the identifier system of the business
// identifier each written-back resource carries (value "Type/id"), used for
// conditional updates on endpoints that refuse client-assigned ids.
const WritebackIdentifierSystem = "https://linkbridge.example.org/Id/writeback"

// ForGPRecord prepares a copy of a stored resource for the patient's GP
// record. The GP record does not know the gateway's ids, so the patient is
// identified by NHS number (a logical Reference.identifier) and the referral
// by the referrer's own ServiceRequest identifier; references to the other
// written-back resources keep their stable ids. meta is dropped (the GP
// endpoint keeps its own) and the resource gets a writeback identifier.
func ForGPRecord(res proto.Message, r *linkbridge.Referral, nhsNumber string) proto.Message {
	out := proto.Clone(res)
	m := out.ProtoReflect()
	if fd := m.Descriptor().Fields().ByName("meta"); fd != nil {
		m.Clear(fd)
	}
	patientRef := "Patient/" + r.PersonID
	referralRef := "ServiceRequest/" + r.ID
	walkRefs(m, func(ref *dpb.Reference) {
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
		}
	})
	if fd := m.Descriptor().Fields().ByName("identifier"); fd != nil && fd.IsList() {
		wid := &dpb.Identifier{System: &dpb.Uri{Value: WritebackIdentifierSystem}, Value: &dpb.String{Value: TypeName(out) + "/" + ID(out)}}
		l := m.Mutable(fd).List()
		present := false
		for i := 0; i < l.Len(); i++ {
			if id, ok := l.Get(i).Message().Interface().(*dpb.Identifier); ok && id.GetSystem().GetValue() == WritebackIdentifierSystem {
				present = true
			}
		}
		if !present {
			l.Append(protoreflect.ValueOfMessage(wid.ProtoReflect()))
		}
	}
	return out
}

// PointPatientAt adds a literal reference to the GP's own Patient (found by
// NHS number on the GP endpoint) to every logical reference to the person.
func PointPatientAt(res proto.Message, nhsNumber, gpPatientID string) {
	walkRefs(res.ProtoReflect(), func(ref *dpb.Reference) {
		id := ref.GetIdentifier()
		if id.GetSystem().GetValue() == linkbridge.NHSNumberSystem && id.GetValue().GetValue() == nhsNumber {
			setRefTarget(ref, "Patient", gpPatientID)
		}
	})
}

func clearLiteral(ref *dpb.Reference) {
	m := ref.ProtoReflect()
	if fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("reference")); fd != nil {
		m.Clear(fd)
	}
}

// walkRefs calls fn for every Reference in m, outside contained resources.
func walkRefs(m protoreflect.Message, fn func(*dpb.Reference)) {
	if ref, ok := m.Interface().(*dpb.Reference); ok {
		fn(ref)
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind || fd.Name() == "contained" {
			return true
		}
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				walkRefs(l.Get(i).Message(), fn)
			}
		case fd.IsMap():
		default:
			walkRefs(v.Message(), fn)
		}
		return true
	})
}
