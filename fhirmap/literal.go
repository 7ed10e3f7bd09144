package fhirmap

import (
	"strings"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	"google.golang.org/protobuf/proto"
)

// LiteralRef is one relative literal reference of a resource: what a
// server that enforces referential integrity must resolve among the
// resources it holds.
type LiteralRef struct {
	// Path is the element path of the Reference, e.g. "CarePlan.goal[0]"
	// (as walk renders paths: FHIR JSON element names, a choice element
	// as "value.reference").
	Path string
	// Type and ID are the target of Type/id or Type/id/_history/n; both are
	// empty when the reference is relative but has neither form (Raw
	// holds it as written).
	Type, ID string
	// Version is the n of Type/id/_history/n; "" for a reference to the
	// current version.
	Version string
	// Raw is a reference of neither form, as written; "" otherwise.
	Raw string
}

// String is the reference as written: Type/id, Type/id/_history/n, or Raw.
func (r LiteralRef) String() string {
	switch {
	case r.Type == "" || r.ID == "":
		return r.Raw
	case r.Version != "":
		return r.Type + "/" + r.ID + "/_history/" + r.Version
	}
	return r.Type + "/" + r.ID
}

// RelativeRefs returns every relative literal reference (Reference.reference
// "Type/id" or "Type/id/_history/n", and any other relative string) in res,
// outside contained resources and not inside another Reference, in the
// order of the reference walk. It leaves out what is not for a server to
// resolve among its own resources: internal references ("#id"), absolute
// URLs and URNs (urn:uuid:, urn:oid:), and references with no literal part
// (logical: Reference.identifier only, or Reference.display only).
func RelativeRefs(res proto.Message) []LiteralRef {
	var out []LiteralRef
	_ = walkRefs(res.ProtoReflect(), TypeName(res), func(ref *dpb.Reference, path func() string) error {
		m := ref.ProtoReflect()
		fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("reference"))
		if fd == nil {
			return nil
		}
		switch fd.Name() {
		case "fragment":
			return nil
		case "uri":
			u := ref.GetUri().GetValue()
			if u == "" || strings.Contains(u, ":") {
				return nil
			}
			lr := LiteralRef{Path: path()}
			if typ, id := RefTarget(ref); typ != "" && id != "" {
				lr.Type, lr.ID = typ, id
			} else {
				lr.Raw = u
			}
			out = append(out, lr)
			return nil
		}
		rid, ok := m.Get(fd).Message().Interface().(*dpb.ReferenceId)
		if !ok {
			return nil
		}
		out = append(out, LiteralRef{Path: path(), Type: typeFromField(string(fd.Name())), ID: rid.GetValue(),
			Version: rid.GetHistory().GetValue()})
		return nil
	})
	return out
}
