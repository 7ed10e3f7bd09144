package fhirjson

import (
	"fmt"
	"sync"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
	r3 "github.com/google/fhir/go/proto/google/fhir/proto/stu3/resources_go_proto"
	"github.com/tidwall/gjson"
)

// FHIR STU3, for the one exchange that is STU3: the ITK3 messages of GP
// Connect Send Document (docs/send-document.md#the-message). Everything
// else linkbridge reads and writes is R4 through Codec.

var stu3 struct {
	once sync.Once
	un   *jsonformat.Unmarshaller
	mar  *jsonformat.Marshaller
	err  error
}

func stu3Codec() (*jsonformat.Unmarshaller, *jsonformat.Marshaller, error) {
	stu3.once.Do(func() {
		stu3.un, stu3.err = jsonformat.NewUnmarshaller("UTC", fhirversion.STU3)
		if stu3.err == nil {
			stu3.mar, stu3.err = jsonformat.NewMarshaller(false, "", "", fhirversion.STU3)
		}
	})
	return stu3.un, stu3.mar, stu3.err
}

// ParseSTU3 parses and validates an STU3 resource with google/fhir's STU3
// protos (cardinalities, value types, required codes).
func ParseSTU3(b []byte) (*r3.ContainedResource, error) {
	un, _, err := stu3Codec()
	if err != nil {
		return nil, err
	}
	m, err := un.Unmarshal(b)
	if err != nil {
		return nil, err
	}
	cr, ok := m.(*r3.ContainedResource)
	if !ok {
		return nil, fmt.Errorf("fhirjson: STU3: unexpected %T", m)
	}
	return cr, nil
}

// EncodeSTU3 renders an STU3 resource as FHIR JSON.
func EncodeSTU3(cr *r3.ContainedResource) ([]byte, error) {
	_, mar, err := stu3Codec()
	if err != nil {
		return nil, err
	}
	return mar.Marshal(cr)
}

// JSONValue is a read-only view of JSON for navigating a message by path
// (gjson syntax: "entry.0.resource.id", `entry.#(fullUrl=="x")`), for
// readers of already validated content.
type JSONValue = gjson.Result

// ParseJSON returns a JSONValue view of b.
func ParseJSON(b []byte) JSONValue { return gjson.ParseBytes(b) }
