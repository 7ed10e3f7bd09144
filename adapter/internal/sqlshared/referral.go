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
	"authored_on", "received_at", "updated_at", "version", "patient_id", "referral_source",
	"agreed_at", "agreed_by_id", "agreed_by_name", "person_declined_at",
	"link_worker_sds_user_id", "agreed_by_sds_user_id", "linked_referral_id", "link_kind", "open_key"}

// ReferralColumns is ReferralColumnList as a SELECT or INSERT column list.
var ReferralColumns = strings.Join(ReferralColumnList, ", ")

// ReferralArgs returns a referral's column values in ReferralColumnList
// order; reasons are JSON text ("[]" for none), unset accepted and
// completed times NULL, and open_key the referral's OpenKey (NULL when it
// has none; scanners read it and drop it: it is derived).
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
		c.Time(r.AuthoredOn), c.Time(r.ReceivedAt), c.Time(r.UpdatedAt), r.Version, r.Patient(), string(r.Source),
		c.NullTime(r.AgreedAt), r.AgreedBy.ID, r.AgreedBy.Name, c.NullTime(r.PersonDeclinedAt),
		r.LinkWorker.SDSUserID, r.AgreedBy.SDSUserID, r.Link.ReferralID, string(r.Link.Kind), nullString(r.OpenKey())}, nil
}

// nullString is s, or NULL when s is empty.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
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
// referral_id, version, at, action, actor, status, occurred_at (NULL when
// unset).
func EventArgs(ev *linkbridge.ReferralEvent, c Columns) []any {
	return []any{ev.ReferralID, ev.Version, c.Time(ev.At), ev.Action, ev.Actor, string(ev.Status), c.NullTime(ev.OccurredAt)}
}

// ResourceRow is a resource version converted to column values.
type ResourceRow struct {
	Type, ID    string
	VersionID   int
	LastUpdated time.Time
	// Body is never nil: the column is NOT NULL.
	Body []byte
	// Params are the version's search parameter values, normalized
	// (NormalizeParams), ParamsJSON the same as the resource.params column
	// stores them (EncodeParams).
	Params     []linkbridge.SearchParam
	ParamsJSON string
}

// ResourceRows converts the resources of a validated intake or change (see
// linkbridge.Intake.Validate) to column values.
func ResourceRows(rs []*linkbridge.Resource) ([]ResourceRow, error) {
	rows := make([]ResourceRow, len(rs))
	for i, r := range rs {
		rows[i] = ResourceRow{Type: r.Type, ID: r.ID, VersionID: r.VersionID, LastUpdated: r.LastUpdated,
			Body: r.Body, Params: NormalizeParams(r.Params)}
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

// EnteredInError reports whether a change leaves the referral entered in
// error: the access it granted then ends (RevokeAccessQuery).
func EnteredInError(r *linkbridge.Referral) bool {
	return r.Status == linkbridge.TaskEnteredInError || r.RequestStatus == "entered-in-error"
}

// RevokeAccessQuery deletes the access a referral entered in error granted
// (docs/referral-exchange.md#disclosure): its two keys (arguments 1 and 2,
// linkbridge.ReferralAccessKeys) come off its ServiceRequest (3), its Task
// (4), the resources based on its ServiceRequest, those it wrote back to
// the GP record, and its Patient (5) with the resources about that Patient
// — the last two only where no other referral not in error gives the same
// key to the same Patient (a Patient shared by referrals stored before
// migration 007). The audit trail keeps what was seen. ph renders the
// dialect's placeholder for argument i; the SQL is otherwise the same on
// both backends.
func RevokeAccessQuery(ph func(i int) string) string {
	return `DELETE FROM resource_access WHERE key IN (` + ph(1) + `, ` + ph(2) + `) AND (
		(type = 'ServiceRequest' AND id = ` + ph(3) + `)
		OR (type = 'Task' AND id = ` + ph(4) + `)
		OR EXISTS (SELECT 1 FROM search_param p WHERE p.type = resource_access.type AND p.id = resource_access.id
			AND p.name = 'based-on' AND p.value = 'ServiceRequest/' || ` + ph(3) + `)
		OR EXISTS (SELECT 1 FROM outbox o WHERE o.referral_id = ` + ph(3) + `
			AND o.resource_type = resource_access.type AND o.resource_id = resource_access.id)
		OR ((type = 'Patient' AND id = ` + ph(5) + `
			OR EXISTS (SELECT 1 FROM search_param p WHERE p.type = resource_access.type AND p.id = resource_access.id
				AND p.name = 'patient' AND p.value = 'Patient/' || ` + ph(5) + `))
			AND NOT EXISTS (SELECT 1 FROM referral o WHERE o.id <> ` + ph(3) + ` AND o.patient_id = ` + ph(5) + `
				AND o.status <> 'entered-in-error' AND o.request_status <> 'entered-in-error'
				AND ('referrer|' || o.referrer_ods = resource_access.key OR 'service|' || o.service_ods = resource_access.key)))
	)`
}

// RevokeAccessArgs are RevokeAccessQuery's arguments for a referral. A
// referral from no organisation has one key (the service's): it fills both
// places.
func RevokeAccessArgs(r *linkbridge.Referral) []any {
	keys := linkbridge.ReferralAccessKeys(r)
	return []any{keys[0], keys[len(keys)-1], r.ID, r.TaskID, r.Patient()}
}

// ActiveStatuses is the SQL list of the Task statuses of a referral that
// is not closed: every valid status but the terminal ones.
var ActiveStatuses = func() string {
	var out []string
	for _, s := range []linkbridge.TaskStatus{linkbridge.TaskDraft, linkbridge.TaskRequested, linkbridge.TaskReceived,
		linkbridge.TaskAccepted, linkbridge.TaskRejected, linkbridge.TaskReady, linkbridge.TaskCancelled, linkbridge.TaskInProgress,
		linkbridge.TaskOnHold, linkbridge.TaskFailed, linkbridge.TaskCompleted, linkbridge.TaskEnteredInError} {
		if !s.Terminal() {
			out = append(out, "'"+string(s)+"'")
		}
	}
	return "(" + strings.Join(out, ", ") + ")"
}()

// ReportActiveSince is the earliest updated_at of a closed referral that a
// report from from reads (linkbridge.CaseStore.ReportReferrals): one whose
// contact or measure is dated at or after from was changed when that was
// recorded, at most linkbridge.MaxClockSkew before its date (the domain
// refuses a date further in the future: Referral.CheckWhen), and no change
// makes updated_at go back. So "active or updated since ReportActiveSince"
// is implied by the report's condition; the stores add it to that condition
// (the same matches) so that a report reads the referrals active in its
// period through an index, instead of every referral of its scope ever
// received (docs/performance.md#reports).
func ReportActiveSince(from time.Time) time.Time { return from.Add(-linkbridge.MaxClockSkew) }
