// Package fhirmap maps between FHIR R4 resources (google/fhir/go protos) and
// the linkbridge domain. It is pure: no JSON, no HTTP, no SQL and no clock;
// time and ids are passed in. It resolves typed references, unpacks contained
// resources and computes the search parameters the store indexes.
//
// The search parameter table, searchTable in params.go, is the one place a
// search parameter is added: indexing (SearchParams), the HTTP API's query
// validation and _include, and the CapabilityStatement read it through
// SearchParameters and LookupSearchParameter
// (docs/referral-exchange.md#search-parameters).
package fhirmap

import (
	"strconv"
	"strings"
	"time"
	"unicode"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// Unwrap returns the resource held by a ContainedResource, or nil.
func Unwrap(cr *rpb.ContainedResource) proto.Message {
	if cr == nil {
		return nil
	}
	m := cr.ProtoReflect()
	od := m.Descriptor().Oneofs().ByName("oneof_resource")
	fd := m.WhichOneof(od)
	if fd == nil {
		return nil
	}
	return m.Get(fd).Message().Interface()
}

// Wrap puts a resource into a ContainedResource.
func Wrap(res proto.Message) *rpb.ContainedResource {
	cr := &rpb.ContainedResource{}
	m := cr.ProtoReflect()
	od := m.Descriptor().Oneofs().ByName("oneof_resource")
	name := res.ProtoReflect().Descriptor().FullName()
	fields := od.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.Message().FullName() == name {
			m.Set(fd, protoreflect.ValueOfMessage(res.ProtoReflect()))
			return cr
		}
	}
	return nil
}

// TypeName returns the FHIR resource type of a resource proto, e.g. "Task".
func TypeName(res proto.Message) string {
	if res == nil {
		return ""
	}
	return string(res.ProtoReflect().Descriptor().Name())
}

// ID returns the logical id of a resource.
func ID(res proto.Message) string {
	m := res.ProtoReflect()
	fd := m.Descriptor().Fields().ByName("id")
	if fd == nil || !m.Has(fd) {
		return ""
	}
	return m.Get(fd).Message().Interface().(*dpb.Id).GetValue()
}

// SetID sets the logical id of a resource.
func SetID(res proto.Message, id string) {
	m := res.ProtoReflect()
	fd := m.Descriptor().Fields().ByName("id")
	m.Set(fd, protoreflect.ValueOfMessage((&dpb.Id{Value: id}).ProtoReflect()))
}

// GetMeta returns the resource's meta, or nil.
func GetMeta(res proto.Message) *dpb.Meta {
	m := res.ProtoReflect()
	fd := m.Descriptor().Fields().ByName("meta")
	if fd == nil || !m.Has(fd) {
		return nil
	}
	return m.Get(fd).Message().Interface().(*dpb.Meta)
}

// SetMeta sets meta.versionId and meta.lastUpdated, keeping any profile,
// security and tag elements the sender gave.
func SetMeta(res proto.Message, version int, lastUpdated time.Time) {
	meta := GetMeta(res)
	if meta == nil {
		meta = &dpb.Meta{}
	} else {
		meta = proto.Clone(meta).(*dpb.Meta)
	}
	meta.VersionId = &dpb.Id{Value: strconv.Itoa(version)}
	meta.LastUpdated = Instant(lastUpdated)
	m := res.ProtoReflect()
	m.Set(m.Descriptor().Fields().ByName("meta"), protoreflect.ValueOfMessage(meta.ProtoReflect()))
}

// Instant converts a time to a FHIR instant in UTC with microsecond precision.
func Instant(t time.Time) *dpb.Instant {
	return &dpb.Instant{ValueUs: t.UnixMicro(), Timezone: "Z", Precision: dpb.Instant_MICROSECOND}
}

// DateTime converts a time to a FHIR dateTime in UTC with second precision.
func DateTime(t time.Time) *dpb.DateTime {
	return &dpb.DateTime{ValueUs: t.Truncate(time.Second).UnixMicro(), Timezone: "Z", Precision: dpb.DateTime_SECOND}
}

// DateTimeToTime converts a FHIR dateTime to a time; the zero time for nil.
func DateTimeToTime(dt *dpb.DateTime) time.Time {
	if dt == nil {
		return time.Time{}
	}
	return time.UnixMicro(dt.GetValueUs()).UTC()
}

// Contained unpacks the contained resources of a resource.
func Contained(res proto.Message) []proto.Message {
	m := res.ProtoReflect()
	fd := m.Descriptor().Fields().ByName("contained")
	if fd == nil {
		return nil
	}
	list := m.Get(fd).List()
	out := make([]proto.Message, 0, list.Len())
	for i := 0; i < list.Len(); i++ {
		a, ok := list.Get(i).Message().Interface().(*anypb.Any)
		if !ok {
			continue
		}
		cr := new(rpb.ContainedResource)
		if err := a.UnmarshalTo(cr); err != nil {
			continue
		}
		if r := Unwrap(cr); r != nil {
			out = append(out, r)
		}
	}
	return out
}

// RefTarget returns the resource type and id of a typed literal reference
// ("Patient/123" arrives as Reference.patient_id), or the fragment id with
// typ "#" for an internal reference, or the URI with typ "" for an absolute
// or urn:uuid reference. All empty when the reference has no literal part.
func RefTarget(ref *dpb.Reference) (typ, id string) {
	if ref == nil {
		return "", ""
	}
	m := ref.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("reference"))
	if fd == nil {
		return "", ""
	}
	switch fd.Name() {
	case "uri":
		// A relative "Type/id" left as a string (the marshaller denormalises
		// typed references in place) is still a typed reference.
		u := ref.GetUri().GetValue()
		if t, id, ok := strings.Cut(u, "/"); ok && !strings.Contains(id, "/") && !strings.Contains(t, ":") && t != "" && t[0] >= 'A' && t[0] <= 'Z' {
			return t, id
		}
		return "", u
	case "fragment":
		return "#", ref.GetFragment().GetValue()
	}
	rid, ok := m.Get(fd).Message().Interface().(*dpb.ReferenceId)
	if !ok {
		return "", ""
	}
	return typeFromField(string(fd.Name())), rid.GetValue()
}

// NewRef builds a typed literal reference to Type/id.
func NewRef(typ, id string) *dpb.Reference {
	ref := &dpb.Reference{}
	setRefTarget(ref, typ, id)
	return ref
}

// setRefTarget points ref at Type/id, replacing any literal reference.
func setRefTarget(ref *dpb.Reference, typ, id string) bool {
	m := ref.ProtoReflect()
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(fieldFromType(typ)))
	if fd == nil {
		return false
	}
	m.Set(fd, protoreflect.ValueOfMessage((&dpb.ReferenceId{Value: id}).ProtoReflect()))
	return true
}

// setVersionedRefTarget points ref at Type/id/_history/version.
func setVersionedRefTarget(ref *dpb.Reference, typ, id string, version int) bool {
	m := ref.ProtoReflect()
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(fieldFromType(typ)))
	if fd == nil {
		return false
	}
	m.Set(fd, protoreflect.ValueOfMessage((&dpb.ReferenceId{Value: id, History: &dpb.Id{Value: strconv.Itoa(version)}}).ProtoReflect()))
	return true
}

// typeFromField turns "service_request_id" into "ServiceRequest".
func typeFromField(f string) string {
	f = strings.TrimSuffix(f, "_id")
	var b strings.Builder
	up := true
	for _, r := range f {
		if r == '_' {
			up = true
			continue
		}
		if up {
			b.WriteRune(unicode.ToUpper(r))
			up = false
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// fieldFromType turns "ServiceRequest" into "service_request_id".
func fieldFromType(t string) string {
	var b strings.Builder
	for i, r := range t {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
		} else {
			b.WriteRune(r)
		}
	}
	b.WriteString("_id")
	return b.String()
}

// RewriteReferences walks every Reference in res (not into contained
// resources) and lets resolve repoint literal references: typed ones arrive
// as (Type, id), absolute and urn:uuid ones as ("", uri), fragments as
// ("#", id). It returns the number of references rewritten.
func RewriteReferences(res proto.Message, resolve func(typ, id string) (newTyp, newID string, ok bool)) int {
	n := 0
	_ = walkRefs(res.ProtoReflect(), TypeName(res), func(ref *dpb.Reference, _ func() string) error {
		if typ, id := RefTarget(ref); id != "" {
			if t, nid, ok := resolve(typ, id); ok && setRefTarget(ref, t, nid) {
				n++
			}
		}
		return nil
	})
	return n
}

// IdentifyReferences gives each literal reference in res (not into
// contained resources) to a resource that ids names ("Type/id", as
// rewritten) that resource's business identifier, when the reference
// carries none: Reference.identifier beside Reference.reference, as FHIR
// R4 allows (references.html#Reference). A reference parameter's
// :identifier modifier matches Reference.identifier only, so a Task whose
// requester is a literal reference to an Organization in the same message
// is found by requester:identifier (its ODS code) only so. It returns the
// number of references it changed.
func IdentifyReferences(res proto.Message, ids map[string]*dpb.Identifier) int {
	if len(ids) == 0 {
		return 0
	}
	n := 0
	_ = walkRefs(res.ProtoReflect(), TypeName(res), func(ref *dpb.Reference, _ func() string) error {
		typ, id := RefTarget(ref)
		if typ == "" || typ == "#" || ref.GetIdentifier().GetValue().GetValue() != "" {
			return nil
		}
		if lid := ids[typ+"/"+id]; lid != nil {
			ref.Identifier = proto.Clone(lid).(*dpb.Identifier)
			n++
		}
		return nil
	})
	return n
}

// Code returns the FHIR code string of a google/fhir code proto (a message
// with an enum "value" field), e.g. "in-progress"; "" when unset.
func Code(c proto.Message) string {
	if c == nil {
		return ""
	}
	m := c.ProtoReflect()
	if !m.IsValid() {
		return ""
	}
	fd := m.Descriptor().Fields().ByName("value")
	if fd == nil || fd.Kind() != protoreflect.EnumKind {
		return ""
	}
	ev := fd.Enum().Values().ByNumber(m.Get(fd).Enum())
	if ev == nil || ev.Number() == 0 {
		return ""
	}
	return enumToCode(string(ev.Name()))
}

// SetCode sets a google/fhir code proto from its FHIR code string; it
// reports false when the code is not in the value set.
func SetCode(c proto.Message, code string) bool {
	m := c.ProtoReflect()
	fd := m.Descriptor().Fields().ByName("value")
	if fd == nil || fd.Kind() != protoreflect.EnumKind {
		return false
	}
	ev := fd.Enum().Values().ByName(protoreflect.Name(codeToEnum(code)))
	if ev == nil {
		return false
	}
	m.Set(fd, protoreflect.ValueOfEnum(ev.Number()))
	return true
}

func enumToCode(s string) string { return strings.ReplaceAll(strings.ToLower(s), "_", "-") }
func codeToEnum(s string) string { return strings.ReplaceAll(strings.ToUpper(s), "-", "_") }

// PointAt makes ref a literal reference to Type/id, keeping its identifier
// and display.
func PointAt(ref *dpb.Reference, typ, id string) bool { return setRefTarget(ref, typ, id) }

// DropContained removes the contained resources whose ids are in drop and
// reports whether it removed any.
func DropContained(res proto.Message, drop map[string]bool) bool {
	m := res.ProtoReflect()
	fd := m.Descriptor().Fields().ByName("contained")
	if fd == nil || !m.Has(fd) {
		return false
	}
	list := m.Get(fd).List()
	kept := m.NewField(fd).List()
	for i := 0; i < list.Len(); i++ {
		a, ok := list.Get(i).Message().Interface().(*anypb.Any)
		if ok {
			cr := new(rpb.ContainedResource)
			if err := a.UnmarshalTo(cr); err == nil {
				if r := Unwrap(cr); r != nil && drop[ID(r)] {
					continue
				}
			}
		}
		kept.Append(list.Get(i))
	}
	if kept.Len() == list.Len() {
		return false
	}
	if kept.Len() == 0 {
		m.Clear(fd)
		return true
	}
	m.Set(fd, protoreflect.ValueOfList(kept))
	return true
}

// Builders of the datatypes the generated resources use.

func fhirID(id string) *dpb.Id        { return &dpb.Id{Value: id} }
func fhirString(s string) *dpb.String { return &dpb.String{Value: s} }
func fhirURI(s string) *dpb.Uri       { return &dpb.Uri{Value: s} }
func fhirCode(s string) *dpb.Code     { return &dpb.Code{Value: s} }
func conceptText(text string) *dpb.CodeableConcept {
	return &dpb.CodeableConcept{Text: fhirString(text)}
}

// coding is a Coding of system and code, with display unless it is empty.
func coding(system, code, display string) *dpb.Coding {
	c := &dpb.Coding{System: fhirURI(system), Code: fhirCode(code)}
	if display != "" {
		c.Display = fhirString(display)
	}
	return c
}

// concept is a CodeableConcept of codings.
func concept(codings ...*dpb.Coding) *dpb.CodeableConcept {
	return &dpb.CodeableConcept{Coding: codings}
}

// logicalRef is a logical reference to a resource of type typ by
// identifier (system|value).
func logicalRef(typ, system, value string) *dpb.Reference {
	return &dpb.Reference{
		Type:       fhirURI(typ),
		Identifier: &dpb.Identifier{System: fhirURI(system), Value: fhirString(value)},
	}
}

// integerExt is an extension with a valueInteger.
func integerExt(url string, n int) *dpb.Extension {
	return &dpb.Extension{Url: fhirURI(url), Value: &dpb.Extension_ValueX{Choice: &dpb.Extension_ValueX_Integer{Integer: &dpb.Integer{Value: int32(n)}}}}
}

// codeExt is an extension with a valueCode.
func codeExt(url, code string) *dpb.Extension {
	return &dpb.Extension{Url: fhirURI(url), Value: &dpb.Extension_ValueX{Choice: &dpb.Extension_ValueX_Code{Code: fhirCode(code)}}}
}
