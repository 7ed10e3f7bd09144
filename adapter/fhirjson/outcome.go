package fhirjson

import (
	"errors"
	"net/http"
	"strings"

	"google.golang.org/protobuf/proto"

	linkbridge "github.com/linkbridge/linkbridge"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	oopb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/operation_outcome_go_proto"
)

// HTTPErrorCodeSystem is the NHS England code system for the HTTP error codes
// carried in OperationOutcome.issue.details.coding. The spelling
// ("Codesystem", lower-case s) is the one every BaRS OperationOutcome example
// and the BaRS proxy use.
const HTTPErrorCodeSystem = "https://fhir.nhs.uk/Codesystem/http-error-codes"

// issueTypes is the OperationOutcome issue type of each application error
// code; any other code is an internal error ("exception").
var issueTypes = map[string]cpb.IssueTypeCode_Value{
	linkbridge.EINVALID:       cpb.IssueTypeCode_INVALID,
	linkbridge.EUNPROCESSABLE: cpb.IssueTypeCode_PROCESSING,
	linkbridge.ENOTFOUND:      cpb.IssueTypeCode_NOT_FOUND,
	linkbridge.ECONFLICT:      cpb.IssueTypeCode_CONFLICT,
	linkbridge.EDUPLICATE:     cpb.IssueTypeCode_DUPLICATE,
	linkbridge.EPRECONDITION:  cpb.IssueTypeCode_CONFLICT,
	linkbridge.ETOOLARGE:      cpb.IssueTypeCode_TOO_LONG,
	linkbridge.EUNSUPPORTED:   cpb.IssueTypeCode_NOT_SUPPORTED,
	linkbridge.ENOTACCEPTABLE: cpb.IssueTypeCode_NOT_SUPPORTED,
	linkbridge.EMETHOD:        cpb.IssueTypeCode_NOT_SUPPORTED,
	linkbridge.EUNAUTHORIZED:  cpb.IssueTypeCode_LOGIN,
	linkbridge.EFORBIDDEN:     cpb.IssueTypeCode_FORBIDDEN,
	linkbridge.ETOOMANY:       cpb.IssueTypeCode_THROTTLED,
	linkbridge.ETIMEOUT:       cpb.IssueTypeCode_TIMEOUT,
	linkbridge.EUNAVAILABLE:   cpb.IssueTypeCode_TRANSIENT,
}

// internalMessage is all a caller learns about an EINTERNAL error.
const internalMessage = "Internal error."

// OutcomeFromError builds the R4 OperationOutcome an HTTP API sends for err
// with the given status. The API decides the status and its HTTP error code
// (for example "REC_BAD_REQUEST", rendered as details.coding in
// HTTPErrorCodeSystem); the codec decides the FHIR issue:
//
//   - An *InvalidResourceError in err's chain yields all of its google/fhir
//     issues (severity, diagnostics and expression unchanged; code "required"
//     instead of "value" for a missing required element), each with
//     details.coding httpCode.
//   - A *linkbridge.Error yields one issue: severity error, the issue code for
//     its Code (EINVALID "invalid", EUNPROCESSABLE "processing", ENOTFOUND
//     "not-found", ECONFLICT "conflict", EDUPLICATE "duplicate",
//     EPRECONDITION "conflict", ETOOLARGE "too-long", EUNSUPPORTED,
//     ENOTACCEPTABLE and EMETHOD "not-supported", EUNAUTHORIZED "login",
//     EFORBIDDEN "forbidden", ETOOMANY "throttled"), details.coding httpCode, diagnostics = Message
//     (the reason phrase of status when empty) and expression = Expression.
//   - Anything else, and any EINTERNAL error or unknown code, yields
//     "exception" with diagnostics "Internal error.": internal detail is for
//     logs only.
//
// A nil err yields InformationOutcome("OK").
func OutcomeFromError(err error, status int, httpCode string) *oopb.OperationOutcome {
	if err == nil {
		return InformationOutcome("OK")
	}
	var ire *InvalidResourceError
	if errors.As(err, &ire) && len(ire.Issues()) > 0 {
		return outcomeFromInvalid(ire, httpCode)
	}
	issue, known := issueTypes[linkbridge.ErrorCode(err)]
	msg := linkbridge.ErrorMessage(err)
	var expr []string
	if !known {
		issue, msg = cpb.IssueTypeCode_EXCEPTION, internalMessage
	} else {
		expr = linkbridge.ErrorExpression(err)
		var le *linkbridge.Error
		if errors.As(err, &le) && le.Invariant {
			issue = cpb.IssueTypeCode_INVARIANT
		}
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	is := &oopb.OperationOutcome_Issue{
		Severity:    &oopb.OperationOutcome_Issue_SeverityCode{Value: cpb.IssueSeverityCode_ERROR},
		Code:        &oopb.OperationOutcome_Issue_CodeType{Value: issue},
		Details:     httpErrorDetails(httpCode),
		Diagnostics: fhirString(msg),
	}
	for _, x := range expr {
		if x != "" {
			is.Expression = append(is.Expression, fhirString(x))
		}
	}
	return &oopb.OperationOutcome{Issue: []*oopb.OperationOutcome_Issue{is}}
}

func outcomeFromInvalid(ire *InvalidResourceError, httpCode string) *oopb.OperationOutcome {
	oo := &oopb.OperationOutcome{}
	for _, src := range ire.Issues() {
		is := proto.Clone(src).(*oopb.OperationOutcome_Issue)
		if is.GetCode().GetValue() == cpb.IssueTypeCode_VALUE &&
			strings.Contains(is.GetDiagnostics().GetValue(), "missing required field") {
			is.Code = &oopb.OperationOutcome_Issue_CodeType{Value: cpb.IssueTypeCode_REQUIRED}
		}
		if is.GetCode().GetValue() == cpb.IssueTypeCode_INVALID_UNINITIALIZED {
			is.Code = &oopb.OperationOutcome_Issue_CodeType{Value: cpb.IssueTypeCode_INVALID}
		}
		if is.GetSeverity().GetValue() == cpb.IssueSeverityCode_INVALID_UNINITIALIZED {
			is.Severity = &oopb.OperationOutcome_Issue_SeverityCode{Value: cpb.IssueSeverityCode_ERROR}
		}
		if is.Details == nil {
			is.Details = httpErrorDetails(httpCode)
		}
		oo.Issue = append(oo.Issue, is)
	}
	return oo
}

// InformationOutcome builds the OperationOutcome returned on success when the
// client asked for "Prefer: return=OperationOutcome": one issue of severity
// information and code informational, with msg as diagnostics.
func InformationOutcome(msg string) *oopb.OperationOutcome {
	is := &oopb.OperationOutcome_Issue{
		Severity: &oopb.OperationOutcome_Issue_SeverityCode{Value: cpb.IssueSeverityCode_INFORMATION},
		Code:     &oopb.OperationOutcome_Issue_CodeType{Value: cpb.IssueTypeCode_INFORMATIONAL},
	}
	if msg != "" {
		is.Diagnostics = fhirString(msg)
	}
	return &oopb.OperationOutcome{Issue: []*oopb.OperationOutcome_Issue{is}}
}

func httpErrorDetails(code string) *dpb.CodeableConcept {
	return &dpb.CodeableConcept{Coding: []*dpb.Coding{{
		System: &dpb.Uri{Value: HTTPErrorCodeSystem},
		Code:   &dpb.Code{Value: code},
	}}}
}

func fhirString(s string) *dpb.String {
	return &dpb.String{Value: s}
}
