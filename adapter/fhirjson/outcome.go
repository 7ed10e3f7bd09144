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

// BaRS receiver ("REC_") HTTP error codes. The ones marked "not in BaRS" have
// no published BaRS code; they follow the BaRS naming (REC_ + the HTTP reason
// phrase in upper snake case).
const (
	CodeBadRequest           = "REC_BAD_REQUEST"            // 400
	CodeUnauthorized         = "REC_UNAUTHORIZED"           // 401
	CodeForbidden            = "REC_FORBIDDEN"              // 403
	CodeNotFound             = "REC_NOT_FOUND"              // 404
	CodeTooManyRequests      = "REC_TOO_MANY_REQUESTS"      // 429, not in BaRS
	CodeMethodNotAllowed     = "REC_METHOD_NOT_ALLOWED"     // 405
	CodeConflict             = "REC_CONFLICT"               // 409
	CodePreconditionFailed   = "REC_PRECONDITION_FAILED"    // 412, not in BaRS
	CodePayloadTooLarge      = "REC_PAYLOAD_TOO_LARGE"      // 413, not in BaRS
	CodeUnsupportedMediaType = "REC_UNSUPPORTED_MEDIA_TYPE" // 415, not in BaRS
	CodeUnprocessableEntity  = "REC_UNPROCESSABLE_ENTITY"   // 422
	CodeServerError          = "REC_SERVER_ERROR"           // 500
)

// codeInfo is how one application error code appears on the wire.
type codeInfo struct {
	status   int
	issue    cpb.IssueTypeCode_Value
	httpCode string
}

var codeTable = map[string]codeInfo{
	linkbridge.EINVALID:       {http.StatusBadRequest, cpb.IssueTypeCode_INVALID, CodeBadRequest},
	linkbridge.EUNPROCESSABLE: {http.StatusUnprocessableEntity, cpb.IssueTypeCode_PROCESSING, CodeUnprocessableEntity},
	linkbridge.ENOTFOUND:      {http.StatusNotFound, cpb.IssueTypeCode_NOT_FOUND, CodeNotFound},
	linkbridge.ECONFLICT:      {http.StatusConflict, cpb.IssueTypeCode_CONFLICT, CodeConflict},
	linkbridge.EDUPLICATE:     {http.StatusConflict, cpb.IssueTypeCode_DUPLICATE, CodeConflict},
	linkbridge.EPRECONDITION:  {http.StatusPreconditionFailed, cpb.IssueTypeCode_CONFLICT, CodePreconditionFailed},
	linkbridge.ETOOLARGE:      {http.StatusRequestEntityTooLarge, cpb.IssueTypeCode_TOO_LONG, CodePayloadTooLarge},
	linkbridge.EUNSUPPORTED:   {http.StatusUnsupportedMediaType, cpb.IssueTypeCode_NOT_SUPPORTED, CodeUnsupportedMediaType},
	linkbridge.EMETHOD:        {http.StatusMethodNotAllowed, cpb.IssueTypeCode_NOT_SUPPORTED, CodeMethodNotAllowed},
	linkbridge.EUNAUTHORIZED:  {http.StatusUnauthorized, cpb.IssueTypeCode_LOGIN, CodeUnauthorized},
	linkbridge.EFORBIDDEN:     {http.StatusForbidden, cpb.IssueTypeCode_FORBIDDEN, CodeForbidden},
	linkbridge.ETOOMANY:       {http.StatusTooManyRequests, cpb.IssueTypeCode_THROTTLED, CodeTooManyRequests},
	linkbridge.EINTERNAL:      {http.StatusInternalServerError, cpb.IssueTypeCode_EXCEPTION, CodeServerError},
}

func infoFor(code string) codeInfo {
	if ci, ok := codeTable[code]; ok {
		return ci
	}
	return codeTable[linkbridge.EINTERNAL]
}

// StatusForCode returns the HTTP status for an application error code:
// EINVALID 400, EUNAUTHORIZED 401, EFORBIDDEN 403, ENOTFOUND 404, EMETHOD 405, ECONFLICT and
// EDUPLICATE 409, EPRECONDITION 412, ETOOLARGE 413, EUNSUPPORTED 415,
// EUNPROCESSABLE 422, ETOOMANY 429, anything else 500.
func StatusForCode(code string) int {
	return infoFor(code).status
}

// HTTPErrorCode returns the BaRS HTTP error code (for example
// "REC_BAD_REQUEST") for an application error code; unknown codes get
// "REC_SERVER_ERROR".
func HTTPErrorCode(code string) string {
	return infoFor(code).httpCode
}

// internalMessage is all a caller learns about an EINTERNAL error.
const internalMessage = "Internal error."

// OutcomeFromError builds the R4 OperationOutcome to send for err.
//
//   - An *InvalidResourceError in err's chain yields all of its google/fhir
//     issues (severity, diagnostics and expression unchanged; code "required"
//     instead of "value" for a missing required element), each with
//     details.coding REC_BAD_REQUEST.
//   - A *linkbridge.Error yields one issue: severity error, the issue code for
//     its Code (EINVALID "invalid", EUNPROCESSABLE "processing", ENOTFOUND
//     "not-found", ECONFLICT "conflict", EDUPLICATE "duplicate",
//     EPRECONDITION "conflict", ETOOLARGE "too-long", EUNSUPPORTED and EMETHOD
//     "not-supported", EUNAUTHORIZED "login", EFORBIDDEN "forbidden",
//     ETOOMANY "throttled", others "exception"),
//     details.coding from HTTPErrorCode, diagnostics = Message and
//     expression = Expression.
//   - Anything else, and any EINTERNAL error, yields "exception" /
//     REC_SERVER_ERROR with diagnostics "Internal error.": internal detail is
//     for logs only.
//
// A nil err yields InformationOutcome("OK").
func OutcomeFromError(err error) *oopb.OperationOutcome {
	if err == nil {
		return InformationOutcome("OK")
	}
	var ire *InvalidResourceError
	if errors.As(err, &ire) && len(ire.Issues()) > 0 {
		return outcomeFromInvalid(ire)
	}
	code := linkbridge.ErrorCode(err)
	ci := infoFor(code)
	msg := linkbridge.ErrorMessage(err)
	var expr []string
	if ci == codeTable[linkbridge.EINTERNAL] {
		msg = internalMessage
	} else {
		expr = linkbridge.ErrorExpression(err)
	}
	if msg == "" {
		msg = http.StatusText(ci.status)
	}
	is := &oopb.OperationOutcome_Issue{
		Severity:    &oopb.OperationOutcome_Issue_SeverityCode{Value: cpb.IssueSeverityCode_ERROR},
		Code:        &oopb.OperationOutcome_Issue_CodeType{Value: ci.issue},
		Details:     httpErrorDetails(ci.httpCode),
		Diagnostics: fhirString(msg),
	}
	for _, x := range expr {
		if x != "" {
			is.Expression = append(is.Expression, fhirString(x))
		}
	}
	return &oopb.OperationOutcome{Issue: []*oopb.OperationOutcome_Issue{is}}
}

func outcomeFromInvalid(ire *InvalidResourceError) *oopb.OperationOutcome {
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
			is.Details = httpErrorDetails(CodeBadRequest)
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
