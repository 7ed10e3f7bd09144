package senddoc

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/google/fhir/go/fhirversion"

	"github.com/linkbridge/linkbridge/adapter/fhirxml"
)

// Format is how a message travels on MESH: FHIR STU3 JSON or XML (ITK3
// allows both; docs/send-document.md#the-message). The outbox keeps the
// JSON; XML is rendered from it at each send, which gives the same bytes
// every time, so a chunked upload resumes consistently.
type Format string

// Formats.
const (
	FormatJSON Format = "json"
	FormatXML  Format = "xml"
)

// ParseFormat reads a format name ("" is JSON).
func ParseFormat(s string) (Format, error) {
	switch Format(s) {
	case "", FormatJSON:
		return FormatJSON, nil
	case FormatXML:
		return FormatXML, nil
	}
	return "", fmt.Errorf("senddoc: message format %q is not json or xml", s)
}

// ContentType is the format's media type (MESH's Mex-Content-Type).
func (f Format) ContentType() string {
	if f == FormatXML {
		return "application/fhir+xml"
	}
	return "application/fhir+json"
}

var stu3XML = sync.OnceValues(func() (*fhirxml.Converter, error) { return fhirxml.NewConverter(fhirversion.STU3) })

// Encode renders a message or response built by this package (FHIR STU3
// JSON) in the format.
func Encode(body []byte, f Format) ([]byte, error) {
	if f != FormatXML {
		return body, nil
	}
	c, err := stu3XML()
	if err != nil {
		return nil, err
	}
	return c.FromJSON(body)
}

// FormatOf tells a received body's format by its first character.
func FormatOf(b []byte) Format {
	if t := bytes.TrimLeft(b, " \t\r\n\ufeff"); len(t) > 0 && t[0] == '<' {
		return FormatXML
	}
	return FormatJSON
}

// asJSON returns a received body as FHIR STU3 JSON, converting XML.
func asJSON(b []byte) ([]byte, error) {
	if FormatOf(b) != FormatXML {
		return b, nil
	}
	c, err := stu3XML()
	if err != nil {
		return nil, err
	}
	return c.ToJSON(b)
}
