package fhirxml

import (
	"encoding/xml"
	"errors"
	"io"
	"regexp"

	linkbridge "github.com/linkbridge/linkbridge"
)

// elementNameRE matches a name from the input that may be echoed in an
// expression: a plausible FHIR element name. Anything else is left out, so
// errors never carry arbitrary input.
var elementNameRE = regexp.MustCompile(`^_?[A-Za-z][A-Za-z0-9_]{0,63}$`)

// invalidf returns an EINVALID *linkbridge.Error located at path (a
// FHIRPath-like expression such as "Patient.name[0].given[1]"; none when
// path is empty). Messages name elements, never element values.
func invalidf(path, format string, args ...any) *linkbridge.Error {
	e := linkbridge.Errorf(linkbridge.EINVALID, format, args...)
	if path != "" {
		e.Expression = []string{path}
	}
	return e
}

// child returns path extended by the element name, or path itself when
// name is not a plausible element name.
func child(path, name string) string {
	if !elementNameRE.MatchString(name) {
		return path
	}
	if path == "" {
		return name
	}
	return path + "." + name
}

func tooDeep(path string) *linkbridge.Error {
	return invalidf(path, "elements nest deeper than %d levels", MaxDepth)
}

func tooLarge(n int) *linkbridge.Error {
	return linkbridge.Errorf(linkbridge.ETOOLARGE, "body is %d bytes, over the %d byte limit", n, MaxBytes)
}

func isEOF(err error) bool { return errors.Is(err, io.EOF) }

// xmlError turns an encoding/xml error into EINVALID. The syntax error's
// message is fixed text plus a line number (encoding/xml quotes element
// names from the input in a few of them, which are safe to show), so only
// its line is kept.
func xmlError(path string, err error) *linkbridge.Error {
	var se *xml.SyntaxError
	switch {
	case errors.As(err, &se):
		return invalidf(path, "XML is not well-formed (line %d)", se.Line)
	case isEOF(err):
		return invalidf(path, "XML ends before the root element is closed")
	default:
		// Such as a declared encoding other than UTF-8.
		return invalidf(path, "XML is not well-formed UTF-8")
	}
}
