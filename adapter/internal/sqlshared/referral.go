package sqlshared

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/linkbridge/linkbridge"
)

// ReferralColumnList names the referral table's columns in the order that
// ReferralArgs and the adapters' scanReferral use.
var ReferralColumnList = []string{"id", "task_id", "person_id", "identifier_system", "identifier_value", "status",
	"business_status", "status_reason", "request_status", "priority", "referrer_ods", "service_ods",
	"reasons", "do_not_contact", "link_worker_id", "link_worker_name", "consent",
	"decline_reason", "discharge_reason", "discharge_summary", "accepted_at", "completed_at",
	"authored_on", "received_at", "updated_at", "version", "patient_id"}

// ReferralColumns is ReferralColumnList as a SELECT or INSERT column list.
var ReferralColumns = strings.Join(ReferralColumnList, ", ")

// ReferralArgs returns a referral's column values in ReferralColumnList
// order; reasons are JSON text ("[]" for none), unset accepted and
// completed times NULL.
func ReferralArgs(r *linkbridge.Referral, c Columns) ([]any, error) {
	reasons := "[]"
	if len(r.Reasons) > 0 {
		b, err := json.Marshal(r.Reasons)
		if err != nil {
			return nil, fmt.Errorf("encode reasons: %w", err)
		}
		reasons = string(b)
	}
	return []any{r.ID, r.TaskID, r.PersonID, r.Identifier.System, r.Identifier.Value, string(r.Status),
		r.BusinessStatus, r.StatusReason, r.RequestStatus, r.Priority, r.ReferrerODS, r.ServiceODS,
		reasons, c.Bool(r.DoNotContact), r.LinkWorker.ID, r.LinkWorker.Name, string(r.Consent),
		r.DeclineReason, r.DischargeReason, r.DischargeSummary, c.NullTime(r.AcceptedAt), c.NullTime(r.CompletedAt),
		c.Time(r.AuthoredOn), c.Time(r.ReceivedAt), c.Time(r.UpdatedAt), r.Version, r.Patient()}, nil
}

// DecodeReasons reads the reasons column written by ReferralArgs; empty or
// "[]" is none (nil).
func DecodeReasons(b []byte) ([]linkbridge.Coding, error) {
	if s := string(b); s == "[]" || s == "" {
		return nil, nil
	}
	var reasons []linkbridge.Coding
	if err := json.Unmarshal(b, &reasons); err != nil {
		return nil, fmt.Errorf("bad stored reasons: %w", err)
	}
	return reasons, nil
}

// EventArgs returns a history event's referral_event column values:
// referral_id, version, at, action, actor, status.
func EventArgs(ev *linkbridge.ReferralEvent, c Columns) []any {
	return []any{ev.ReferralID, ev.Version, c.Time(ev.At), ev.Action, ev.Actor, string(ev.Status)}
}

// ResourceRow is a resource version converted to column values.
type ResourceRow struct {
	Type, ID    string
	VersionID   int
	LastUpdated time.Time
	// Body is never nil: the column is NOT NULL.
	Body []byte
	// Params are the version's search parameter values, ParamsJSON the
	// same as the resource.params column stores them (EncodeParams).
	Params     []linkbridge.SearchParam
	ParamsJSON string
}

// ResourceRows converts the resources of a validated intake or change (see
// linkbridge.Intake.Validate) to column values.
func ResourceRows(rs []*linkbridge.Resource) ([]ResourceRow, error) {
	rows := make([]ResourceRow, len(rs))
	for i, r := range rs {
		rows[i] = ResourceRow{Type: r.Type, ID: r.ID, VersionID: r.VersionID, LastUpdated: r.LastUpdated,
			Body: r.Body, Params: r.Params}
		if rows[i].Body == nil {
			rows[i].Body = []byte{}
		}
		var err error
		if rows[i].ParamsJSON, err = EncodeParams(r.Params); err != nil {
			return nil, err
		}
	}
	return rows, nil
}

// AccessRows returns the resource_access rows (type, key, id) that attach
// the referral's access keys (linkbridge.ReferralAccessKeys) to resources
// rs and, when personID is not empty, to the person's Patient: per key,
// the resources in order, then the Patient.
func AccessRows(ref *linkbridge.Referral, rs []ResourceRow, personID string) [][3]string {
	keys := linkbridge.ReferralAccessKeys(ref)
	rows := make([][3]string, 0, len(keys)*(len(rs)+1))
	for _, k := range keys {
		for i := range rs {
			rows = append(rows, [3]string{rs[i].Type, k, rs[i].ID})
		}
		if personID != "" {
			rows = append(rows, [3]string{"Patient", k, personID})
		}
	}
	return rows
}
