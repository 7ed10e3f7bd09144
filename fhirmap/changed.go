package fhirmap

import (
	"bytes"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// ChangedElements returns the top-level elements (FHIR JSON names, such as
// "requester" or "for") whose values differ between two versions of one
// resource type, in field order, leaving out those named in ignore. A
// resource sent to replace a stored one can then be held to the elements
// its sender may change.
func ChangedElements(stored, sent proto.Message, ignore ...string) []string {
	a, b := stored.ProtoReflect(), sent.ProtoReflect()
	if a.Descriptor() != b.Descriptor() {
		return []string{"resourceType"}
	}
	skip := make(map[string]bool, len(ignore))
	for _, n := range ignore {
		skip[n] = true
	}
	var out []string
	fields := a.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		name := ElementName(fd)
		if skip[name] {
			continue
		}
		if !fieldEqual(fd, a, b) {
			out = append(out, name)
		}
	}
	return out
}

// ElementName is the FHIR JSON name of a resource field: its proto JSON
// name, except where google/fhir renamed an element that is a Go or proto
// keyword (Task.for is the field for_value).
func ElementName(fd protoreflect.FieldDescriptor) string {
	if fd.Name() == "for_value" {
		return "for"
	}
	return fd.JSONName()
}

// fieldEqual reports whether field fd holds equal values in a and b.
func fieldEqual(fd protoreflect.FieldDescriptor, a, b protoreflect.Message) bool {
	if a.Has(fd) != b.Has(fd) {
		return false
	}
	if !a.Has(fd) {
		return true
	}
	va, vb := a.Get(fd), b.Get(fd)
	switch {
	case fd.IsList():
		la, lb := va.List(), vb.List()
		if la.Len() != lb.Len() {
			return false
		}
		for i := 0; i < la.Len(); i++ {
			if !valueEqual(fd, la.Get(i), lb.Get(i)) {
				return false
			}
		}
		return true
	case fd.IsMap():
		return false // FHIR resources have no map fields
	}
	return valueEqual(fd, va, vb)
}

func valueEqual(fd protoreflect.FieldDescriptor, a, b protoreflect.Value) bool {
	if fd.Message() != nil {
		return proto.Equal(a.Message().Interface(), b.Message().Interface())
	}
	if ba, ok := a.Interface().([]byte); ok {
		return bytes.Equal(ba, b.Bytes())
	}
	return a.Interface() == b.Interface()
}
