// Package fhirxml converts FHIR XML to and from FHIR JSON, and wraps
// fhirjson.Codec into a codec for FHIR R4 XML. google/fhir has no XML
// support; the conversion is driven by google/fhir's proto descriptors
// (which elements a type has, in which order, which repeat, which are
// primitives, choices or resources), so it knows every R4 (and STU3)
// resource without a hand-written table. docs/fhir-xml.md describes the
// mapping.
//
// ToJSON and FromJSON only translate the representation: they check what
// the XML (or JSON) syntax of FHIR requires (namespace, known elements,
// cardinality of one, primitive value syntax) but not the rules google/fhir
// validates, which Codec.Decode applies by handing the JSON to fhirjson.
//
// Errors:
//   - ToJSON, FromJSON and Codec.Decode return a *linkbridge.Error with code
//     EINVALID when the input is not FHIR XML (JSON) of the version: not
//     well-formed, a DOCTYPE, an element outside the FHIR namespace, an
//     unknown element, text where FHIR allows none, a repeated element that
//     may occur once, a malformed boolean, integer or decimal. Expression
//     holds a FHIRPath-like location ("Patient.name[0].given[1]") when one
//     is known. Messages name elements, never element values.
//   - They return ETOOLARGE over MaxBytes, and EINVALID past MaxDepth.
//   - Codec.Decode returns fhirjson's errors for a resource that converts
//     but fails validation; Codec.Encode's errors are internal (EINTERNAL).
//
// Everything here is safe for concurrent use; the descriptor model is
// built once per FHIR version and shared.
package fhirxml

import (
	"fmt"

	"github.com/google/fhir/go/fhirversion"
	"google.golang.org/protobuf/proto"

	"github.com/linkbridge/linkbridge/adapter/fhirjson"

	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
)

// Converter converts between the XML and JSON forms of one FHIR version.
// It is safe for concurrent use.
type Converter struct {
	m *model
}

// NewConverter returns the converter for ver, fhirversion.R4 or
// fhirversion.STU3. It is cheap after the first call for a version.
func NewConverter(ver fhirversion.Version) (*Converter, error) {
	var (
		m   *model
		err error
	)
	switch ver {
	case fhirversion.R4:
		m, err = r4()
	case fhirversion.STU3:
		m, err = stu3()
	default:
		return nil, fmt.Errorf("fhirxml: FHIR version %v is not supported", ver)
	}
	if err != nil {
		return nil, err
	}
	return &Converter{m: m}, nil
}

// ToJSON converts one FHIR XML resource to compact FHIR JSON. A leading
// UTF-8 byte order mark is ignored. Decimals keep their lexical form
// ("1.50" stays 1.50). Errors are described in the package doc.
func (c *Converter) ToJSON(xml []byte) ([]byte, error) {
	return c.m.toJSON(xml)
}

// FromJSON converts one FHIR JSON resource to FHIR XML: an XML declaration,
// then the resource element with the FHIR namespace, elements in FHIR
// order, no indentation. Errors are described in the package doc.
func (c *Converter) FromJSON(json []byte) ([]byte, error) {
	return c.m.fromJSON(json)
}

// ToJSON converts one FHIR R4 XML resource to FHIR R4 JSON; see
// Converter.ToJSON.
func ToJSON(xml []byte) ([]byte, error) {
	m, err := r4()
	if err != nil {
		return nil, err
	}
	return m.toJSON(xml)
}

// FromJSON converts one FHIR R4 JSON resource to FHIR R4 XML; see
// Converter.FromJSON.
func FromJSON(json []byte) ([]byte, error) {
	m, err := r4()
	if err != nil {
		return nil, err
	}
	return m.fromJSON(json)
}

// Codec decodes and encodes FHIR R4 XML by way of a fhirjson.Codec. Build it
// once with New and share it: its methods are safe for concurrent use.
type Codec struct {
	json *fhirjson.Codec
	m    *model
}

// New returns a Codec over jc, or over a fresh fhirjson.New() codec when jc
// is nil.
func New(jc *fhirjson.Codec) (*Codec, error) {
	if jc == nil {
		var err error
		if jc, err = fhirjson.New(); err != nil {
			return nil, err
		}
	}
	m, err := r4()
	if err != nil {
		return nil, err
	}
	return &Codec{json: jc, m: m}, nil
}

// Decode parses one FHIR R4 XML resource: ToJSON, then fhirjson's Decode,
// so a resource that converts is validated exactly as a JSON one is, and
// its errors carry fhirjson's expressions.
func (c *Codec) Decode(xml []byte) (*rpb.ContainedResource, error) {
	j, err := c.m.toJSON(xml)
	if err != nil {
		return nil, err
	}
	return c.json.Decode(j)
}

// Encode renders m, a *ContainedResource or a bare R4 resource, as FHIR R4
// XML: fhirjson's Encode, then FromJSON. Like fhirjson's Encode it does not
// validate or modify m. Errors are internal (EINTERNAL).
func (c *Codec) Encode(m proto.Message) ([]byte, error) {
	j, err := c.json.Encode(m)
	if err != nil {
		return nil, err
	}
	x, err := c.m.fromJSON(j)
	if err != nil {
		// JSON that fhirjson wrote and FromJSON refuses is a bug here, not
		// a fault of the caller: not wrapped, so it stays EINTERNAL.
		return nil, fmt.Errorf("fhirxml: encode: %v", err)
	}
	return x, nil
}
