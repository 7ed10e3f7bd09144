// Package fhirjson converts between FHIR R4 JSON and the google/fhir R4
// protocol buffers, and builds the FHIR OperationOutcome bodies the gateway
// returns. It is the only package in linkbridge that imports
// github.com/google/fhir/go/jsonformat (STYLE.md convention 8).
//
// A Codec is built once with New and shared: it is safe for concurrent use.
//
// Errors:
//   - Decode returns a *linkbridge.Error with code EINVALID when the body is
//     empty, is not a JSON object, is not valid JSON, or does not parse as a
//     FHIR R4 resource (unknown element, wrong JSON type, malformed primitive,
//     unknown resourceType), or breaks a FHIR JSON rule jsonformat lets
//     through (empty string, null outside an array, empty object or array,
//     duplicate key). Expression names the offending element when known.
//   - Decode, Validate and ValidateEncoded return an *InvalidResourceError when the resource
//     parses but breaks FHIR rules that google/fhir validates (a missing
//     required element, a malformed id, a reference to a resource type the
//     element does not allow). It unwraps to a *linkbridge.Error with code
//     EINVALID, so linkbridge.ErrorCode reports EINVALID (HTTP 400).
//   - Any other error (for example Encode of a nil message) is internal:
//     linkbridge.ErrorCode reports EINTERNAL.
//
// No error message built here carries element values: jsonformat keeps the
// offending value only in a field of its internal error type, which this
// package never copies (see doc on structuralError).
package fhirjson

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
	"github.com/google/fhir/go/jsonformat/errorreporter"
	"github.com/google/fhir/go/jsonformat/fhirvalidate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	linkbridge "github.com/linkbridge/linkbridge"

	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	oopb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/operation_outcome_go_proto"
)

// MaxNestingDepth is the deepest element path (counted in path segments)
// that Decode accepts. Real referrals nest about a dozen levels
// (Bundle.entry.resource.ServiceRequest.contained.Patient.extension...);
// the limit stops a hostile body from making the decoder recurse without
// bound.
const MaxNestingDepth = 64

// timeZone is the zone jsonformat applies to dates and dateTimes that carry
// no offset. UK Core and BaRS ask for UTC.
const timeZone = "UTC"

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// Codec decodes and encodes FHIR R4 JSON. Build it once with New and share
// it: its methods are safe for concurrent use.
type Codec struct {
	um *jsonformat.Unmarshaller
	m  *jsonformat.Marshaller
}

// New returns a Codec with a validating R4 unmarshaller (dates without an
// offset are read as UTC) and a compact R4 marshaller.
func New() (*Codec, error) {
	um, err := jsonformat.NewUnmarshaller(timeZone, fhirversion.R4)
	if err != nil {
		return nil, fmt.Errorf("fhirjson: new unmarshaller: %w", err)
	}
	um.MaxNestingDepth = MaxNestingDepth
	m, err := jsonformat.NewMarshaller(false, "", "", fhirversion.R4)
	if err != nil {
		return nil, fmt.Errorf("fhirjson: new marshaller: %w", err)
	}
	return &Codec{um: um, m: m}, nil
}

// Decode parses one FHIR R4 JSON resource (any type, including a Bundle) and
// validates it with google/fhir.
//
// It returns a *linkbridge.Error with code EINVALID when b is not a FHIR R4
// JSON resource, including FHIR JSON rules jsonformat does not check (an
// empty string, a null outside an array, an empty object or array, a
// duplicate key), and an *InvalidResourceError (which unwraps to an EINVALID
// *linkbridge.Error) when the resource breaks a rule that google/fhir
// validates. A leading UTF-8 byte order mark is ignored.
func (c *Codec) Decode(b []byte) (*rpb.ContainedResource, error) {
	b = bytes.TrimPrefix(b, utf8BOM)
	body := bytes.TrimLeft(b, " \t\r\n")
	if len(body) == 0 {
		return nil, linkbridge.Errorf(linkbridge.EINVALID, "request body is empty: expected a FHIR R4 JSON resource")
	}
	if body[0] != '{' {
		return nil, linkbridge.Errorf(linkbridge.EINVALID, "request body is not a JSON object: expected a FHIR R4 JSON resource")
	}
	msg, outcome, err := c.um.UnmarshalWithOutcome(body)
	if err != nil {
		// Any err from UnmarshalWithOutcome means the input is not a FHIR
		// resource (unknown field, invalid JSON); its concrete types are in
		// jsonformat/internal/jsonpbhelper, so errors.As cannot match them.
		return nil, structuralError(err)
	}
	cr, ok := msg.(*rpb.ContainedResource)
	if !ok || Resource(cr) == nil {
		return nil, fmt.Errorf("fhirjson: decode: unmarshaller returned %T without a resource", msg)
	}
	if ae := checkJSONRules(body, string(Resource(cr).ProtoReflect().Descriptor().Name())); ae != nil {
		return nil, ae
	}
	if outcome != nil && hasErrorIssue(outcome.R4Outcome) {
		return nil, &InvalidResourceError{Outcome: outcome.R4Outcome}
	}
	return cr, nil
}

// DecodeResource is Decode returning the bare resource (for example a
// *Task) instead of its ContainedResource.
func (c *Codec) DecodeResource(b []byte) (proto.Message, error) {
	cr, err := c.Decode(b)
	if err != nil {
		return nil, err
	}
	return Resource(cr), nil
}

// Encode renders m as compact FHIR R4 JSON. m is either a
// *ContainedResource or a bare R4 resource such as *Patient or
// *OperationOutcome. Encode does not validate; call Validate first for
// resources the gateway generated. Errors are internal (EINTERNAL).
//
// Encode does not modify m, so one message may be encoded from several
// goroutines. (jsonformat's Marshaller rewrites typed references such as
// Reference.patient_id back into Reference.uri in the message it is given;
// Encode therefore marshals a copy.)
func (c *Codec) Encode(m proto.Message) ([]byte, error) {
	if cr, ok := m.(*rpb.ContainedResource); ok {
		return c.EncodeContained(cr)
	}
	if m == nil || !m.ProtoReflect().IsValid() {
		return nil, errors.New("fhirjson: encode: nil resource")
	}
	if _, ok := containedField(m); !ok {
		return nil, fmt.Errorf("fhirjson: encode: %s is not an R4 resource", m.ProtoReflect().Descriptor().FullName())
	}
	b, err := c.m.MarshalResource(proto.Clone(m))
	if err != nil {
		return nil, fmt.Errorf("fhirjson: encode %s: %w", m.ProtoReflect().Descriptor().Name(), err)
	}
	return b, nil
}

// EncodeContained renders the resource held by cr as compact FHIR R4 JSON.
// Like Encode it does not modify cr. Errors (nil or empty cr, marshal
// failure) are internal (EINTERNAL).
func (c *Codec) EncodeContained(cr *rpb.ContainedResource) ([]byte, error) {
	if Resource(cr) == nil {
		return nil, errors.New("fhirjson: encode: empty ContainedResource")
	}
	b, err := c.m.Marshal(proto.Clone(cr))
	if err != nil {
		return nil, fmt.Errorf("fhirjson: encode %s: %w", Resource(cr).ProtoReflect().Descriptor().Name(), err)
	}
	return b, nil
}

// Validate checks m, a *ContainedResource or a bare R4 resource, before the
// gateway stores or sends it: google/fhir's validation (required elements,
// primitive formats, reference target types), then the FHIR JSON rules on
// its encoding, which catch what the proto allows but FHIR does not (an empty
// string primitive, an empty element such as "maritalStatus":{}).
//
// It returns an *InvalidResourceError (unwrapping to an EINVALID
// *linkbridge.Error) listing every google/fhir issue, an EINVALID
// *linkbridge.Error for a JSON rule, or an internal error if m is not an R4
// resource. Resources inside contained[] are opaque Any messages to
// google/fhir's validator, so only the JSON rules reach them.
func (c *Codec) Validate(m proto.Message) error {
	cr, err := c.validateProto(m)
	if err != nil {
		return err
	}
	b, err := c.EncodeContained(cr)
	if err != nil {
		return err
	}
	return checkEncoded(cr, b)
}

// ValidateEncoded is Validate for a resource the caller has already
// rendered: b is Encode(m), or that rendering edited as m was (such as
// SetVersionMeta after fhirmap.SetMeta). It checks the JSON rules on b
// instead of encoding m again. Errors are those of Validate.
func (c *Codec) ValidateEncoded(m proto.Message, b []byte) error {
	cr, err := c.validateProto(m)
	if err != nil {
		return err
	}
	return checkEncoded(cr, b)
}

// validateProto runs google/fhir's validation on m and returns m
// contained.
func (c *Codec) validateProto(m proto.Message) (*rpb.ContainedResource, error) {
	cr, err := Contain(m)
	if err != nil {
		return nil, err
	}
	er := errorreporter.NewOperationErrorReporter(fhirversion.R4)
	if err := fhirvalidate.ValidateWithErrorReporter(cr, er); err != nil {
		return nil, fmt.Errorf("fhirjson: validate: %w", err)
	}
	if hasErrorIssue(er.Outcome.R4Outcome) {
		return nil, &InvalidResourceError{Outcome: er.Outcome.R4Outcome}
	}
	return cr, nil
}

// checkEncoded checks the FHIR JSON rules on b, the rendering of cr.
func checkEncoded(cr *rpb.ContainedResource, b []byte) error {
	if ae := checkJSONRules(b, string(Resource(cr).ProtoReflect().Descriptor().Name())); ae != nil {
		return ae
	}
	return nil
}

// Contain wraps a bare R4 resource in a *ContainedResource; a
// *ContainedResource is returned as is. It returns an internal error when m
// is nil or not an R4 resource.
func Contain(m proto.Message) (*rpb.ContainedResource, error) {
	if cr, ok := m.(*rpb.ContainedResource); ok {
		if Resource(cr) == nil {
			return nil, errors.New("fhirjson: empty ContainedResource")
		}
		return cr, nil
	}
	if m == nil || !m.ProtoReflect().IsValid() {
		return nil, errors.New("fhirjson: nil resource")
	}
	fd, ok := containedField(m)
	if !ok {
		return nil, fmt.Errorf("fhirjson: %s is not an R4 resource", m.ProtoReflect().Descriptor().FullName())
	}
	cr := &rpb.ContainedResource{}
	cr.ProtoReflect().Set(fd, protoreflect.ValueOfMessage(m.ProtoReflect()))
	return cr, nil
}

// Resource returns the resource held by cr (for example a *Patient), or nil
// when cr is nil or holds nothing.
func Resource(cr *rpb.ContainedResource) proto.Message {
	if cr == nil {
		return nil
	}
	r := cr.ProtoReflect()
	od := r.Descriptor().Oneofs().ByName("oneof_resource")
	if od == nil {
		return nil
	}
	fd := r.WhichOneof(od)
	if fd == nil || fd.Message() == nil {
		return nil
	}
	return r.Get(fd).Message().Interface()
}

// containedField finds the ContainedResource oneof field whose type is m's.
func containedField(m proto.Message) (protoreflect.FieldDescriptor, bool) {
	want := m.ProtoReflect().Descriptor().FullName()
	od := (&rpb.ContainedResource{}).ProtoReflect().Descriptor().Oneofs().ByName("oneof_resource")
	if od == nil {
		return nil, false
	}
	fields := od.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.Message() != nil && fd.Message().FullName() == want {
			return fd, true
		}
	}
	return nil, false
}

// hasErrorIssue reports whether oo holds an issue of severity error or fatal.
// google/fhir v0.7.4 only ever reports errors, but warnings must not reject
// a resource if a later version adds them.
func hasErrorIssue(oo *oopb.OperationOutcome) bool {
	for _, is := range oo.GetIssue() {
		if isErrorSeverity(is) {
			return true
		}
	}
	return false
}
