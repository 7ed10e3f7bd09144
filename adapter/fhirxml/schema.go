package fhirxml

import (
	"fmt"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	apb "github.com/google/fhir/go/proto/google/fhir/proto/annotations_go_proto"
	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	r3pb "github.com/google/fhir/go/proto/google/fhir/proto/stu3/resources_go_proto"
)

// This file derives the FHIR element model that the XML <-> JSON conversion
// walks from the google/fhir proto descriptors, the way jsonformat derives
// its JSON names (jsonpbhelper.buildFieldMap and Marshaller.marshalFieldValue
// in google/fhir/go v0.7.4):
//
//   - a field's element name is its proto json_name ("string_value" is
//     "string", "class_value" is "class");
//   - a field whose message type carries the is_choice_type option is a
//     choice element: each member of its single oneof is one element named
//     json_name(field) + Title(json_name(member)) (value + String);
//   - a message whose structure_definition_kind is KIND_PRIMITIVE_TYPE is a
//     FHIR primitive (a value plus optional id and extensions);
//     KIND_RESOURCE is a resource;
//   - a field of the root ContainedResource type (Bundle.entry.resource) or
//     of type google.protobuf.Any (contained; R4 Parameters.parameter.resource,
//     which jsonformat v0.7.4 itself cannot read) holds a whole resource.
//
// Fields are kept in proto field order, which google/fhir generates in FHIR
// element definition order, with one exception: Reference.reference is a
// oneof ("reference": uri, fragment, patientId, ...) that google/fhir
// placed after Reference.type. In FHIR only "reference" (the uri member) is
// an element, and it comes first; schema puts it back there.
//
// Two FHIR elements are XML attributes (xml.html, "representation
// xmlAttr"): Element.id on every non-resource element, and Extension.url.

// fhirNS is the namespace of every FHIR XML element.
const fhirNS = "http://hl7.org/fhir"

// xhtmlNS is the namespace of Narrative.div.
const xhtmlNS = "http://www.w3.org/1999/xhtml"

// extensionSD is the structure definition URL of the Extension datatype,
// whose url element is an XML attribute.
const extensionSD = "http://hl7.org/fhir/StructureDefinition/Extension"

// typeKind says how a message type is written.
type typeKind int

const (
	kindComplex   typeKind = iota // datatype or backbone element
	kindResource                  // a resource: id is an element, no attributes
	kindPrimitive                 // value attribute, id attribute, extension children
	kindXHTML                     // Narrative.div: an XHTML element, a JSON string
	kindContainer                 // holds one resource wrapped in its type's element
)

// valueKind is the JSON type of a primitive's value.
type valueKind int

const (
	valString valueKind = iota
	valBool
	valInteger
	valDecimal
)

// typeInfo is the element model of one message type.
type typeInfo struct {
	name  string // FHIR type name (the message name), for resources the resourceType
	kind  typeKind
	value valueKind // for kindPrimitive

	// fields are the child elements in FHIR order (attributes excluded).
	fields []*fieldInfo
	// byName maps an XML element name / JSON key to its field. A choice
	// field is listed under each member's name.
	byName map[string]elemRef
	// idAttr: the element's id is an XML attribute (every non-resource).
	idAttr bool
	// urlAttr: the element has a url attribute (Extension).
	urlAttr bool
	// ext is the Extension type of a primitive's extension children (nil
	// when it may have none, as Xhtml).
	ext *typeInfo
}

// fieldInfo is one child element (or choice element) of a type.
type fieldInfo struct {
	name     string // JSON name; the choice prefix ("value") for a choice
	repeated bool
	typ      *typeInfo     // nil for a choice
	choices  []*choiceInfo // for a choice, in proto order
}

// choiceInfo is one type a choice element may take.
type choiceInfo struct {
	name string // full element name, such as "valueString"
	typ  *typeInfo
}

// elemRef is what an element name resolves to.
type elemRef struct {
	field  *fieldInfo
	choice *choiceInfo // nil unless field is a choice
}

// model is the element model of one FHIR version, rooted at its
// ContainedResource message.
type model struct {
	version   string
	resources map[string]*typeInfo // by resourceType
	types     map[protoreflect.FullName]*typeInfo
	root      protoreflect.FullName // the ContainedResource message
}

var (
	r4Once   sync.Once
	r4Model  *model
	r4Err    error
	stu3Once sync.Once
	stu3Mod  *model
	stu3Err  error
)

// r4 returns the R4 model, built on first use and shared.
func r4() (*model, error) {
	r4Once.Do(func() {
		r4Model, r4Err = buildModel("R4", (&rpb.ContainedResource{}).ProtoReflect().Descriptor())
	})
	return r4Model, r4Err
}

// stu3 returns the STU3 model, built on first use and shared.
func stu3() (*model, error) {
	stu3Once.Do(func() {
		stu3Mod, stu3Err = buildModel("STU3", (&r3pb.ContainedResource{}).ProtoReflect().Descriptor())
	})
	return stu3Mod, stu3Err
}

// buildModel walks every message reachable from root, a ContainedResource
// whose oneof "oneof_resource" lists each resource type.
func buildModel(version string, root protoreflect.MessageDescriptor) (*model, error) {
	m := &model{
		version:   version,
		resources: map[string]*typeInfo{},
		types:     map[protoreflect.FullName]*typeInfo{},
		root:      root.FullName(),
	}
	od := root.Oneofs().ByName("oneof_resource")
	if od == nil {
		return nil, fmt.Errorf("fhirxml: %s has no oneof_resource", root.FullName())
	}
	for i := 0; i < od.Fields().Len(); i++ {
		md := od.Fields().Get(i).Message()
		if md == nil {
			continue
		}
		ti, err := m.typeOf(md)
		if err != nil {
			return nil, err
		}
		if ti.kind != kindResource {
			return nil, fmt.Errorf("fhirxml: %s in %s is not a resource", md.FullName(), root.FullName())
		}
		m.resources[ti.name] = ti
	}
	return m, nil
}

func sdKind(md protoreflect.MessageDescriptor) apb.StructureDefinitionKindValue {
	return proto.GetExtension(md.Options(), apb.E_StructureDefinitionKind).(apb.StructureDefinitionKindValue)
}

func isChoice(md protoreflect.MessageDescriptor) bool {
	return md != nil && proto.GetExtension(md.Options(), apb.E_IsChoiceType).(bool)
}

// typeOf returns the typeInfo of md, building it (and the types it refers
// to) on first sight. Recursive types (Extension.extension) are resolved by
// registering the typeInfo before its fields are filled.
func (m *model) typeOf(md protoreflect.MessageDescriptor) (*typeInfo, error) {
	if ti, ok := m.types[md.FullName()]; ok {
		return ti, nil
	}
	ti := &typeInfo{name: string(md.Name()), byName: map[string]elemRef{}}
	m.types[md.FullName()] = ti
	switch {
	case md.FullName() == m.root || md.FullName() == "google.protobuf.Any":
		ti.kind = kindContainer
		return ti, nil
	case sdKind(md) == apb.StructureDefinitionKindValue_KIND_RESOURCE:
		ti.kind = kindResource
	case sdKind(md) == apb.StructureDefinitionKindValue_KIND_PRIMITIVE_TYPE:
		return ti, m.fillPrimitive(ti, md)
	default:
		ti.kind = kindComplex
		ti.idAttr = true
		ti.urlAttr = proto.GetExtension(md.Options(), apb.E_FhirStructureDefinitionUrl).(string) == extensionSD
	}
	return ti, m.fillFields(ti, md)
}

// fillPrimitive sets the JSON value type of a primitive: a bool or integer
// proto value is a JSON boolean or number, Decimal (a string in the proto)
// is a number written as given, everything else (dates, codes, base64, and
// code enums) is a string. Xhtml is Narrative.div.
func (m *model) fillPrimitive(ti *typeInfo, md protoreflect.MessageDescriptor) error {
	ti.kind = kindPrimitive
	if md.Name() == "Xhtml" {
		ti.kind = kindXHTML
		return nil
	}
	if vf := md.Fields().ByName("value"); vf != nil {
		switch vf.Kind() {
		case protoreflect.BoolKind:
			ti.value = valBool
		case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Uint32Kind,
			protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Uint64Kind:
			ti.value = valInteger
		}
	}
	if md.Name() == "Decimal" {
		ti.value = valDecimal
	}
	if ef := md.Fields().ByName("extension"); ef != nil && ef.IsList() && ef.Message() != nil {
		ext, err := m.typeOf(ef.Message())
		if err != nil {
			return err
		}
		ti.ext = ext
	}
	return nil
}

// fillFields lists md's fields as child elements.
func (m *model) fillFields(ti *typeInfo, md protoreflect.MessageDescriptor) error {
	fields := md.Fields()
	var ref *fieldInfo // Reference.reference, moved before Reference.type
	refAt := 0
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.Message() == nil {
			return fmt.Errorf("fhirxml: %s is not a message field", fd.FullName())
		}
		name := fd.JSONName()
		if ti.idAttr && name == "id" || ti.urlAttr && name == "url" {
			continue // XML attributes
		}
		if od := fd.ContainingOneof(); od != nil && !isChoice(md) {
			// Reference's oneof: only the member named like the oneof
			// (uri, json_name "reference") is a FHIR element.
			if name != string(od.Name()) {
				continue
			}
		}
		fi := &fieldInfo{name: name, repeated: fd.IsList()}
		if isChoice(fd.Message()) {
			cd := fd.Message()
			for j := 0; j < cd.Fields().Len(); j++ {
				cf := cd.Fields().Get(j)
				if cf.Message() == nil {
					return fmt.Errorf("fhirxml: %s is not a message field", cf.FullName())
				}
				ct, err := m.typeOf(cf.Message())
				if err != nil {
					return err
				}
				ci := &choiceInfo{name: name + strings.ToUpper(cf.JSONName()[:1]) + cf.JSONName()[1:], typ: ct}
				fi.choices = append(fi.choices, ci)
				ti.byName[ci.name] = elemRef{field: fi, choice: ci}
			}
		} else {
			ft, err := m.typeOf(fd.Message())
			if err != nil {
				return err
			}
			fi.typ = ft
			ti.byName[name] = elemRef{field: fi}
		}
		if fd.ContainingOneof() != nil && !isChoice(md) {
			ref, refAt = fi, len(ti.fields)
			continue
		}
		ti.fields = append(ti.fields, fi)
	}
	if ref != nil {
		// FHIR puts Reference.reference before Reference.type (R4); without
		// a type (STU3) the proto position is already right.
		for i, f := range ti.fields {
			if f.name == "type" && i < refAt {
				refAt = i
				break
			}
		}
		ti.fields = append(ti.fields[:refAt], append([]*fieldInfo{ref}, ti.fields[refAt:]...)...)
	}
	return nil
}
