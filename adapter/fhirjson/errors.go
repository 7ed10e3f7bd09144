package fhirjson

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	linkbridge "github.com/linkbridge/linkbridge"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	oopb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/operation_outcome_go_proto"
)

// InvalidResourceError reports a resource that parsed but failed google/fhir
// validation. Outcome holds the issues exactly as google/fhir reported them
// (severity error, code "value", diagnostics such as
// `error at "ServiceRequest": missing required field "status"`, expression
// such as "ServiceRequest"), so a handler can return them to the sender.
//
// It unwraps to a *linkbridge.Error with code EINVALID (HTTP 400): in FHIR a
// missing required element, a cardinality breach or a malformed primitive is
// a structural fault of the instance, not a business rule.
type InvalidResourceError struct {
	Outcome *oopb.OperationOutcome
}

// Error implements error. The text names elements, never element values.
func (e *InvalidResourceError) Error() string {
	ae := e.AppError()
	msg := "fhirjson: invalid resource: " + ae.Message
	if len(ae.Expression) > 0 {
		msg += " at " + strings.Join(ae.Expression, ", ")
	}
	return msg
}

// Issues returns the google/fhir issues, unmodified. Callers must not change
// them.
func (e *InvalidResourceError) Issues() []*oopb.OperationOutcome_Issue {
	return e.Outcome.GetIssue()
}

// Unwrap returns AppError, so errors.As(err, new(*linkbridge.Error)) and
// linkbridge.ErrorCode(err) see code EINVALID.
func (e *InvalidResourceError) Unwrap() error {
	return e.AppError()
}

// AppError summarises the error as a *linkbridge.Error with code EINVALID:
// Expression is the first error issue's expression(s) and Message its
// diagnostics without the `error at "..."` prefix, followed by a count of the
// remaining issues.
func (e *InvalidResourceError) AppError() *linkbridge.Error {
	var first *oopb.OperationOutcome_Issue
	n := 0
	for _, is := range e.Issues() {
		if !isErrorSeverity(is) {
			continue
		}
		if first == nil {
			first = is
		}
		n++
	}
	if first == nil {
		return linkbridge.Errorf(linkbridge.EINVALID, "resource failed FHIR R4 validation")
	}
	_, msg := splitErrorAt(first.GetDiagnostics().GetValue())
	if msg == "" {
		msg = "resource failed FHIR R4 validation"
	}
	if n > 1 {
		msg += fmt.Sprintf(" (and %d more %s)", n-1, plural(n-1, "issue", "issues"))
	}
	ae := &linkbridge.Error{Code: linkbridge.EINVALID, Message: msg}
	for _, x := range first.GetExpression() {
		if v := x.GetValue(); v != "" {
			ae.Expression = append(ae.Expression, v)
		}
	}
	return ae
}

func isErrorSeverity(is *oopb.OperationOutcome_Issue) bool {
	switch is.GetSeverity().GetValue() {
	case cpb.IssueSeverityCode_ERROR, cpb.IssueSeverityCode_FATAL:
		return true
	}
	return false
}

// maxListed caps how many distinct messages and expressions a structural
// error lists; a body with ten thousand unknown keys gets a short answer.
const maxListed = 10

// errorAtRE matches one line of a jsonformat error: `error at "PATH": DETAILS`.
var errorAtRE = regexp.MustCompile(`^error at ("(?:[^"\\]|\\.)*"): (.+)$`)

// elementNameRE matches a JSON key that may be named in an expression: a
// FHIR element name, optionally with the "_" prefix of primitive extensions.
var elementNameRE = regexp.MustCompile(`^_?[A-Za-z][A-Za-z0-9_]{0,63}$`)

// pathlessDetails are the jsonformat messages that come without a path and are
// known to carry no input values.
var pathlessDetails = map[string]bool{
	"invalid JSON":                          true,
	`missing required field "resourceType"`: true,
	"invalid resource type":                 true,
}

// structuralError turns an error from jsonformat's UnmarshalWithOutcome into
// an EINVALID *linkbridge.Error.
//
// jsonformat v0.7.4 errors print as one line per fault,
// `error at "Patient.birthDate": expected date`. The PATH is built from
// element names, and DETAILS is a fixed text; the offending value (for a
// bad date: `found "1980-13-45"`; for a bad code: `"x" is not a
// AdministrativeGenderCode`; for invalid JSON: the surrounding bytes) sits in
// the error's Diagnostics field, which Error() does not print and which this
// function never copies. Two cases need care:
//   - "unknown field" names the enclosing object ("Patient"), not the key. The
//     key is read from Diagnostics by reflection and appended ("Patient.foo")
//     only when it looks like an element name; otherwise the path is used as is.
//   - "unknown resource type" has the sender's resourceType string as the last
//     path segment, so no expression is given for it.
//
// Lines in any other shape (errors that are not jsonformat UnmarshalErrors
// can embed input) become the generic "invalid FHIR R4 resource".
func structuralError(err error) *linkbridge.Error {
	lines := strings.Split(err.Error(), "\n")
	keys := unknownFieldKeys(err)
	if len(keys) != len(lines) {
		keys = nil
	}
	var (
		msgs, exprs     []string
		seenMsg         = map[string]bool{}
		seenExpr        = map[string]bool{}
		moreMsg, moreEx int
	)
	for i, line := range lines {
		path, details := splitErrorAt(line)
		switch {
		case details == "unknown resource type":
			path = ""
		case path == "" && !pathlessDetails[details]:
			details = "invalid FHIR R4 resource"
		case details == "unknown field" && keys != nil && keys[i] != "":
			path += "." + keys[i]
		}
		if details != "" && !seenMsg[details] {
			seenMsg[details] = true
			if len(msgs) < maxListed {
				msgs = append(msgs, details)
			} else {
				moreMsg++
			}
		}
		if path != "" && !seenExpr[path] {
			seenExpr[path] = true
			if len(exprs) < maxListed {
				exprs = append(exprs, path)
			} else {
				moreEx++
			}
		}
	}
	msg := strings.Join(msgs, "; ")
	if msg == "" {
		msg = "invalid FHIR R4 resource"
	}
	if moreMsg > 0 {
		msg += fmt.Sprintf("; and %d more", moreMsg)
	}
	if moreEx > 0 {
		msg += fmt.Sprintf(" (%d more %s not listed)", moreEx, plural(moreEx, "element", "elements"))
	}
	return &linkbridge.Error{Code: linkbridge.EINVALID, Message: msg, Expression: exprs}
}

// splitErrorAt splits `error at "PATH": DETAILS` into its parts. A line in
// another shape comes back as ("", line).
func splitErrorAt(line string) (path, details string) {
	m := errorAtRE.FindStringSubmatch(line)
	if m == nil {
		return "", line
	}
	p, err := strconv.Unquote(m[1])
	if err != nil {
		return "", m[2]
	}
	return p, m[2]
}

// unknownFieldKeys returns, for each fault in a jsonformat error (in the
// order Error() prints them), the JSON key of an "unknown field" fault when it
// is a plausible element name, and "" otherwise. It returns nil when err is
// not a jsonformat UnmarshalError or UnmarshalErrorList.
//
// Those types live in jsonformat/internal/jsonpbhelper and cannot be named
// here, so their exported fields are read by reflection. If a google/fhir
// upgrade changes them, this returns nil and expressions lose the key, which
// TestDecodeStructuralErrors notices.
func unknownFieldKeys(err error) []string {
	v := reflect.ValueOf(err)
	var elems []reflect.Value
	switch v.Kind() {
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			elems = append(elems, v.Index(i))
		}
	case reflect.Pointer:
		elems = []reflect.Value{v}
	default:
		return nil
	}
	keys := make([]string, len(elems))
	for i, e := range elems {
		if e.Kind() != reflect.Pointer || e.IsNil() {
			return nil
		}
		e = e.Elem()
		t := e.Type()
		if e.Kind() != reflect.Struct || t.Name() != "UnmarshalError" || !strings.HasSuffix(t.PkgPath(), "/jsonpbhelper") {
			return nil
		}
		details, diag := e.FieldByName("Details"), e.FieldByName("Diagnostics")
		if details.Kind() != reflect.String || diag.Kind() != reflect.String || details.String() != "unknown field" {
			continue
		}
		k, err := strconv.Unquote(diag.String())
		if err != nil || !elementNameRE.MatchString(k) {
			continue
		}
		keys[i] = k
	}
	return keys
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
