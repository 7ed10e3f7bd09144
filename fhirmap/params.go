package fhirmap

import (
	"github.com/linkbridge/linkbridge"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// referenceParams names, per resource type, the reference search parameters
// linkbridge indexes and the element each reads (FHIR R4 search parameter
// definitions). "patient" only indexes references to a Patient.
var referenceParams = map[string][]struct{ param, field string }{
	"Task": {
		{"patient", "for_value"}, {"subject", "for_value"}, {"focus", "focus"},
		{"owner", "owner"}, {"requester", "requester"}, {"based-on", "based_on"}, {"part-of", "part_of"},
	},
	"ServiceRequest": {
		{"patient", "subject"}, {"subject", "subject"}, {"requester", "requester"},
		{"performer", "performer"}, {"based-on", "based_on"},
	},
	"CarePlan":    {{"patient", "subject"}, {"subject", "subject"}, {"based-on", "based_on"}},
	"Goal":        {{"patient", "subject"}, {"subject", "subject"}},
	"Encounter":   {{"patient", "subject"}, {"subject", "subject"}, {"based-on", "based_on"}},
	"Observation": {{"patient", "subject"}, {"subject", "subject"}, {"based-on", "based_on"}},
	"Procedure":   {{"patient", "subject"}, {"subject", "subject"}, {"based-on", "based_on"}},
	"Condition":   {{"patient", "subject"}, {"subject", "subject"}},
	"Consent":     {{"patient", "patient"}},
	"Patient":     {{"general-practitioner", "general_practitioner"}},
}

// SearchParams computes the search parameter values the store indexes for a
// resource: identifier (as "system|value" and bare "value"), status, intent,
// code and category tokens, and reference parameters (as "Type/id", or
// "system|value" under "<param>:identifier" for logical references). A
// subject that is a Patient is indexed once, as patient.
func SearchParams(res proto.Message) []linkbridge.SearchParam {
	var out []linkbridge.SearchParam
	add := func(name, value string) {
		if value != "" {
			out = append(out, linkbridge.SearchParam{Name: name, Value: value})
		}
	}
	m := res.ProtoReflect()
	fields := m.Descriptor().Fields()
	if fd := fields.ByName("identifier"); fd != nil {
		for _, id := range messages[*dpb.Identifier](m, fd) {
			if v := id.GetValue().GetValue(); v != "" {
				add("identifier", id.GetSystem().GetValue()+"|"+v)
				add("identifier", v)
			}
		}
	}
	for _, name := range []string{"status", "intent"} {
		if fd := fields.ByName(protoreflect.Name(name)); fd != nil && m.Has(fd) && fd.Message() != nil {
			add(name, Code(m.Get(fd).Message().Interface()))
		}
	}
	for _, name := range []string{"code", "category"} {
		fd := fields.ByName(protoreflect.Name(name))
		if fd == nil {
			continue
		}
		for _, cc := range messages[*dpb.CodeableConcept](m, fd) {
			for _, c := range cc.GetCoding() {
				add(name, c.GetSystem().GetValue()+"|"+c.GetCode().GetValue())
				add(name, c.GetCode().GetValue())
			}
		}
	}
	for _, rp := range referenceParams[TypeName(res)] {
		fd := fields.ByName(protoreflect.Name(rp.field))
		if fd == nil {
			continue
		}
		for _, ref := range messages[*dpb.Reference](m, fd) {
			typ, id := RefTarget(ref)
			switch {
			case typ == "" || typ == "#":
			case rp.param == "patient" && typ != "Patient":
			case rp.param == "subject" && typ == "Patient":
				// indexed as patient; searches on subject=Patient/x use it
			default:
				add(rp.param, typ+"/"+id)
			}
			if lid := ref.GetIdentifier(); lid.GetValue().GetValue() != "" {
				add(rp.param+":identifier", lid.GetSystem().GetValue()+"|"+lid.GetValue().GetValue())
			}
		}
	}
	return out
}

// messages returns the messages of a singular or repeated message field
// whose elements are of type T.
func messages[T proto.Message](m protoreflect.Message, fd protoreflect.FieldDescriptor) []T {
	if fd.Kind() != protoreflect.MessageKind || !m.Has(fd) {
		return nil
	}
	var out []T
	if fd.IsList() {
		l := m.Get(fd).List()
		for i := 0; i < l.Len(); i++ {
			if t, ok := l.Get(i).Message().Interface().(T); ok {
				out = append(out, t)
			}
		}
		return out
	}
	if t, ok := m.Get(fd).Message().Interface().(T); ok {
		out = append(out, t)
	}
	return out
}
