package linkbridge

import (
	"errors"
	"fmt"
)

// Application error codes. Handlers map them to HTTP statuses and FHIR
// OperationOutcome issue codes; workers decide retries from them.
const (
	// EINVALID marks structurally invalid input (HTTP 400).
	EINVALID = "invalid"
	// EUNPROCESSABLE marks well-formed input that breaks a business rule (HTTP 422).
	EUNPROCESSABLE = "unprocessable"
	// ENOTFOUND marks a missing resource, or one outside the caller's scope (HTTP 404).
	ENOTFOUND = "not_found"
	// ECONFLICT marks a conflict with the current state, such as an illegal
	// status transition (HTTP 409).
	ECONFLICT = "conflict"
	// EDUPLICATE marks a replayed message or an already-stored business
	// identifier (HTTP 409 for messages; intake turns it into 200 + existing).
	EDUPLICATE = "duplicate"
	// EPRECONDITION marks a failed If-Match version check (HTTP 412).
	EPRECONDITION = "precondition"
	// ETOOLARGE marks a request body over the configured limit (HTTP 413).
	ETOOLARGE = "too_large"
	// EUNSUPPORTED marks an unsupported media type (HTTP 415).
	EUNSUPPORTED = "unsupported_media_type"
	// ENOTACCEPTABLE marks a request for a response format the API does
	// not write (HTTP 406).
	ENOTACCEPTABLE = "not_acceptable"
	// EMETHOD marks a method that the resource does not allow (HTTP 405).
	EMETHOD = "method_not_allowed"
	// EUNAUTHORIZED marks missing or bad credentials (HTTP 401).
	EUNAUTHORIZED = "unauthorized"
	// EFORBIDDEN marks an authenticated caller whose role or scopes do not
	// allow the operation (HTTP 403). A resource outside the caller's
	// organisations is ENOTFOUND instead, indistinguishable from a missing one.
	EFORBIDDEN = "forbidden"
	// ETOOMANY marks a caller over its rate limit (HTTP 429).
	ETOOMANY = "too_many_requests"
	// ETIMEOUT marks a request that ran out of time: the server's deadline
	// for it passed (HTTP 408, BaRS REC_TIMEOUT).
	ETIMEOUT = "timeout"
	// EUNAVAILABLE marks a request the server cannot answer safely right
	// now, such as a read whose audit record could not be stored (HTTP
	// 503): retry later.
	EUNAVAILABLE = "unavailable"
	// EINTERNAL marks anything else; users only see "internal error".
	EINTERNAL = "internal"
)

// Error is the application error. Message is safe to show to a caller: it
// never carries names, NHS numbers or notes. Expression names the offending
// FHIR element(s), as in OperationOutcome.issue.expression.
type Error struct {
	Code       string
	Message    string
	Expression []string
	// Existing names the stored resource ("Type/id") that an EDUPLICATE
	// or ECONFLICT error collided with, when known.
	Existing string
	// Rule names the store rule an ECONFLICT broke, when callers must tell
	// it apart from other conflicts (RuleOpenReferral).
	Rule string
	// Invariant marks an EINVALID error as a broken rule between elements
	// rather than one bad element: its OperationOutcome issue type is
	// "invariant" (BaRS answers an unknown combination of message event,
	// reason, status or category so), not "invalid".
	Invariant bool
}

// Error implements the error interface.
func (e *Error) Error() string {
	if len(e.Expression) > 0 {
		return fmt.Sprintf("linkbridge error: code=%s message=%s expression=%v", e.Code, e.Message, e.Expression)
	}
	return fmt.Sprintf("linkbridge error: code=%s message=%s", e.Code, e.Message)
}

// AsInvariant marks e as an invariant failure (see Error.Invariant) and
// returns it.
func (e *Error) AsInvariant() *Error {
	e.Invariant = true
	return e
}

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// At returns a copy of the error naming the offending element paths.
func (e *Error) At(expr ...string) *Error {
	c := *e
	c.Expression = append(append([]string(nil), e.Expression...), expr...)
	return &c
}

// ErrorCode returns the code of the application error in err's chain, or
// EINTERNAL when there is none. A nil error has no code.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the caller-safe message of the application error in
// err's chain, or "Internal error." for anything else.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}

// ErrorExpression returns the element paths named by the application error in
// err's chain.
func ErrorExpression(err error) []string {
	var e *Error
	if errors.As(err, &e) {
		return e.Expression
	}
	return nil
}
