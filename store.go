package linkbridge

import (
	"context"
	"time"
)

// Resource is one version of a FHIR resource held by the gateway.
type Resource struct {
	// Type is the FHIR resource type, e.g. "Task".
	Type string
	// ID is the logical id.
	ID string
	// VersionID counts versions from 1 (meta.versionId).
	VersionID int
	// LastUpdated is meta.lastUpdated of this version, in UTC.
	LastUpdated time.Time
	// Body is the resource JSON exactly as served (with id and meta set).
	// Reads return it as stored; it is never re-marshalled.
	Body []byte
	// Params are the search parameter values of this version; the store
	// indexes the current version's params.
	Params []SearchParam
}

// Reference returns "Type/id".
func (r *Resource) Reference() string { return r.Type + "/" + r.ID }

// SearchParam is one indexed value of a FHIR search parameter, e.g.
// {Name: "patient", Value: "Patient/123"} or {Name: "identifier",
// Value: "9434765919", System: "https://fhir.nhs.uk/Id/nhs-number"}. A
// token (an identifier, a Coding, a reference's logical identifier) is one
// value with its system, which a search finds with or without the system
// (see ParamFilter); other values have no System. A Value written as
// "system|value" with no System is taken as that token
// (docs/referral-exchange.md#search-parameters).
type SearchParam struct {
	Name   string
	Value  string
	System string
}

// ParamFilter matches resources that have parameter Name equal to any of
// Values (FHIR comma = OR). Several filters are ANDed. A value is in
// FHIR's token syntax: "system|value" matches value in that system,
// "|value" value without a system, and a value with no "|" (a code, or a
// reference "Type/id") matches it whatever its system.
type ParamFilter struct {
	Name   string
	Values []string
}

// DateFilter compares meta.lastUpdated with Time using a FHIR search prefix:
// eq, gt, ge, lt or le.
type DateFilter struct {
	Prefix string
	Time   time.Time
}

// MissingFilter matches resources by whether a search parameter has a
// value (FHIR's :missing modifier): with Missing set, those indexed under
// none of Names; without, those indexed under at least one. Names are the
// index names of one parameter (a reference parameter's values may be
// indexed under "<name>:identifier" too; see fhirmap.IndexNames).
type MissingFilter struct {
	Names   []string
	Missing bool
}

// ResourceQuery is a search over one resource type.
type ResourceQuery struct {
	Type        string
	IDs         []string
	Params      []ParamFilter
	Missing     []MissingFilter
	LastUpdated []DateFilter
	// Count is the page size (at least 1), Offset the number of matches to
	// skip. Results are ordered by lastUpdated, then id; with Descending,
	// by lastUpdated, then id, both descending (FHIR _sort=-_lastUpdated).
	Count      int
	Offset     int
	Descending bool
	// Access, when not nil, restricts the search to resources carrying one
	// of its keys: the caller's organisations (see ReferralAccessKeys).
	// Total and paging count only those, so out-of-scope resources are
	// never seen, not even as a count.
	Access *Access
	// AccurateTotal asks for the number of every match (FHIR
	// _total=accurate), a count whose cost grows with the matches. Without
	// it the search counts at most TotalBound matches, so that the count
	// costs no more than a page of a bounded size (see SearchResult.Total).
	AccurateTotal bool
	// TotalBound caps the count of a search without AccurateTotal: zero
	// means DefaultTotalBound. The count always goes one match past the
	// page (Offset+Count+1), so that the caller can tell whether another
	// page follows.
	TotalBound int
}

// DefaultTotalBound is how many matches a search without
// ResourceQuery.AccurateTotal counts at most (beyond its page).
const DefaultTotalBound = 1000

// CountLimit returns how many matches SearchResources counts for q:
// unlimited (0) with AccurateTotal, otherwise one past the larger of the
// bound and the end of the page, so that a count above the bound (or the
// page) shows that there are more.
func (q *ResourceQuery) CountLimit() int {
	if q.AccurateTotal {
		return 0
	}
	bound := q.TotalBound
	if bound <= 0 {
		bound = DefaultTotalBound
	}
	return max(bound, q.Offset+q.Count) + 1
}

// SearchResult is one page of a search.
type SearchResult struct {
	Resources []*Resource
	// Total is the number of matches, not only this page, when TotalExact
	// is set. A search without ResourceQuery.AccurateTotal stops counting
	// past its bound (ResourceQuery.CountLimit): then TotalExact is false
	// and Total is the number counted, a lower bound that is always more
	// than Offset+Count, so "Offset+Count < Total" tells whether another
	// page follows either way.
	Total int
	// TotalExact reports whether Total counts every match.
	TotalExact bool
}

// Intake is everything one inbound referral stores, atomically.
type Intake struct {
	// Person is the referred person. When NewPerson is false the person
	// already exists and is only linked.
	Person    *Person
	NewPerson bool
	// Referral is the new referral (Version 1).
	Referral *Referral
	// Resources are the version-1 resources to create: the Patient (when
	// NewPerson), ServiceRequest, Task and any supporting resources.
	Resources []*Resource
	// MessageID is the X-Request-Id of the message that carried the
	// referral, recorded so that a replay is refused. Empty for RESTful
	// creates.
	MessageID string
	// Events are the subscription topic events of the intake (the new
	// referral Task); the store records them for every subscription they
	// match, in the intake's transaction (SubscriptionStore).
	Events []*TopicEvent
	// Audit, when set, is the audit record of the request that stores the
	// intake. It commits with the intake, as AuditStore.RecordAudit would
	// store it (its ID assigned when empty): there is a record exactly when
	// there is a stored referral, and none of an intake that was refused.
	Audit *AuditRecord
}

// ReferralChange is one versioned change to a referral.
type ReferralChange struct {
	// Referral is the new state; its Version must be the stored version + 1.
	Referral *Referral
	// Resources are new versions of existing resources, or version-1
	// resources to create. Each VersionID must be the stored version + 1.
	Resources []*Resource
	// MessageID is the X-Request-Id of the message that asked for the
	// change, if any (recorded for replay detection).
	MessageID string
	// Plan, when set, replaces the referral's care and support plan.
	Plan *Plan
	// Contacts and Measures are new case-record entries to add.
	Contacts []*Contact
	Measures []*Measure
	// ContactUpdates and MeasureUpdates replace stored entries of the
	// referral by id (corrections: amended or withdrawn); their CreatedAt
	// is kept as stored. One the referral does not hold is ENOTFOUND.
	ContactUpdates []*Contact
	MeasureUpdates []*Measure
	// Event, when set, is appended to the referral's history.
	Event *ReferralEvent
	// Outbox are write-backs to the GP record produced by the change; they
	// commit with it (no change without its write-back, no write-back for a
	// change that rolled back).
	Outbox []*OutboxMessage
	// Events are the subscription topic events of the change (new
	// versions of the referral's resources); the store records them for
	// every subscription they match, each with its subscription's next
	// event number, and queues their notifications, in the change's
	// transaction (SubscriptionStore): no event without its change, and no
	// gap in a subscription's numbers.
	Events []*TopicEvent
	// Audit, when set, is the audit record of the request that makes the
	// change. It commits with the change, as AuditStore.RecordAudit would
	// store it (its ID assigned when empty): no change without its record,
	// no record of success for a change that was refused or rolled back.
	Audit *AuditRecord
}

// Store is the social prescribing store: the link workers' system of record
// and the gateway's FHIR resource store. Implementations: adapter/sqlite and
// adapter/postgres; both pass adapter/storetest.
//
// Access: CreateReferral and UpdateReferral attach the referral's
// ReferralAccessKeys to every resource they write, and CreateReferral to
// the referred person's Patient even when it is only linked. Keys are
// removed only when a change leaves the referral entered in error: its keys
// come off the resources it gave them to, and off its Patient unless
// another referral gives the same key (docs/referral-exchange.md#disclosure).
// SearchResources with ResourceQuery.Access returns only resources carrying
// one of its keys.
type Store interface {
	// CreateReferral stores an intake atomically: all or nothing. It returns
	// EDUPLICATE (with Error.Existing naming the stored resource) when the
	// referrer already has a referral with the referral identifier
	// ("ServiceRequest/<id>"; an identifier is unique per ReferrerODS, and
	// another organisation's referral with the same one is no duplicate), when
	// MessageID was already processed ("MessageHeader/<request id>"), or when
	// NewPerson is set and the NHS number is already stored
	// ("Patient/<id>"). Intake.Audit, when set, is stored in the same
	// transaction.
	CreateReferral(ctx context.Context, in *Intake) error

	// UpdateReferral applies a change atomically. It returns ENOTFOUND when
	// the referral does not exist, EPRECONDITION when the referral or a
	// resource is not at the version the change expects, and EDUPLICATE when
	// MessageID was already processed. ReferralChange.Audit, when set, is
	// stored in the same transaction.
	UpdateReferral(ctx context.Context, ch *ReferralChange) error

	// MessageProcessed reports whether a message with this X-Request-Id was
	// already processed (recorded by CreateReferral or UpdateReferral).
	MessageProcessed(ctx context.Context, requestID string) (bool, error)

	// FindReferral returns a referral by id, or ENOTFOUND.
	FindReferral(ctx context.Context, id string) (*Referral, error)
	// FindReferralByTaskID returns the referral tracked by a Task, or ENOTFOUND.
	FindReferralByTaskID(ctx context.Context, taskID string) (*Referral, error)
	// FindReferralByIdentifier returns the referral that the organisation
	// referrerODS made with a business identifier (identifiers are the
	// referrer's own: unique per organisation, not across organisations).
	// It returns ENOTFOUND when that organisation has no referral with
	// that identifier, whether or not another organisation has one.
	FindReferralByIdentifier(ctx context.Context, referrerODS string, id Identifier) (*Referral, error)
	// FindPersonByNHSNumber returns the person with a normalised NHS number,
	// or ENOTFOUND.
	FindPersonByNHSNumber(ctx context.Context, nhsNumber string) (*Person, error)
	// FindPerson returns a person by id, or ENOTFOUND.
	FindPerson(ctx context.Context, id string) (*Person, error)

	// ReadResource returns the current version of a resource, or ENOTFOUND.
	ReadResource(ctx context.Context, typ, id string) (*Resource, error)
	// ReadResourceVersion returns one version of a resource, or ENOTFOUND.
	ReadResourceVersion(ctx context.Context, typ, id string, version int) (*Resource, error)
	// ResourceHistory returns every version of a resource, newest first, or
	// ENOTFOUND.
	ResourceHistory(ctx context.Context, typ, id string) ([]*Resource, error)
	// SearchResources returns one page of the current versions matching q.
	SearchResources(ctx context.Context, q *ResourceQuery) (*SearchResult, error)

	// Close releases the store.
	Close() error
}

// IndexStore lets the search index be rebuilt from the stored resources
// when the search parameter table changes (a parameter added, or the way
// one is indexed), so that a search never misses a resource only because
// it was stored by an earlier version (intake.Reindex;
// docs/referral-exchange.md#search-parameters). Both backends implement it.
type IndexStore interface {
	// SearchIndexVersion returns the version of the search parameter
	// table the stored index was built with, "" when none was recorded.
	SearchIndexVersion(ctx context.Context) (string, error)
	// SetSearchIndexVersion records the version the index is now built
	// with.
	SetSearchIndexVersion(ctx context.Context, version string) error
	// CurrentResources returns up to limit current resource versions with
	// their stored Params, in (type, id) order, starting after the key
	// (afterType, afterID); ("", "") starts at the beginning.
	CurrentResources(ctx context.Context, afterType, afterID string, limit int) ([]*Resource, error)
	// ReindexResource replaces the indexed search parameter values of the
	// current version of r.Type/r.ID with r.Params. It changes nothing and
	// reports false when the resource is no longer at r.VersionID (a newer
	// version was indexed when it was written).
	ReindexResource(ctx context.Context, r *Resource) (bool, error)
}

// SettingStore holds named settings of the store itself, which belong to
// the data it holds rather than to one process's configuration: the
// system base its FHIR resources were written with (SettingSystemBase,
// docs/identifiers.md#linkbridges-own-uris). Both backends implement it.
type SettingStore interface {
	// Setting returns the value recorded under name, "" when none is.
	Setting(ctx context.Context, name string) (string, error)
	// InitSetting records value under name unless a value is recorded
	// already, and returns the value recorded: value, or the one there
	// before. Of processes starting at once, the first to record wins.
	InitSetting(ctx context.Context, name, value string) (string, error)
}

// SettingSystemBase names the setting that records the system base
// (serve --system-base) the store's data was written with: the base of
// the write-back key its resources carry on the GP record.
const SettingSystemBase = "system-base"

// CaseRecord is the link worker's record of one referral.
type CaseRecord struct {
	Referral *Referral
	Person   *Person
	Plan     Plan
	Contacts []*Contact
	Measures []*Measure
	// Events is the referral's history, oldest first.
	Events []*ReferralEvent
}

// ReferralEvent is one entry of a referral's history: every versioned change.
type ReferralEvent struct {
	ReferralID string `json:"referralId"`
	// Version is the referral version the change produced.
	Version int `json:"version"`
	// At is when the change was recorded; OccurredAt, when it differs,
	// is when it happened (a lifecycle action's "at").
	At         time.Time `json:"at"`
	OccurredAt time.Time `json:"occurredAt,omitzero"`
	// Action names the change: "received", "accept", "contact", "plan", ...
	Action string `json:"action"`
	// Actor is who made it: "requester", "performer", or a link worker id.
	Actor string `json:"actor"`
	// Status is the Task status after the change.
	Status TaskStatus `json:"status"`
}

// ReferralFilter selects referrals for an inbox or caseload.
type ReferralFilter struct {
	// ServiceODS restricts to referrals addressed to one service.
	ServiceODS string
	// ReferrerODS restricts to referrals made by one organisation.
	ReferrerODS string
	Statuses    []TaskStatus
	// LinkWorkerID restricts to one link worker's referrals.
	LinkWorkerID string
	// PersonID restricts to one person's referrals.
	PersonID string
	// ReceivedFrom and ReceivedTo bound ReceivedAt (inclusive, exclusive);
	// zero means unbounded.
	ReceivedFrom, ReceivedTo time.Time
	// Limit (at least 1) and Offset page the result, newest first.
	Limit, Offset int
}

// CaseStore holds the link workers' case records. The same
// ReferralChange that moves a referral carries its case-record changes and
// history event, so they commit together.
type CaseStore interface {
	// GetCaseRecord returns a referral's case record, or ENOTFOUND.
	GetCaseRecord(ctx context.Context, referralID string) (*CaseRecord, error)
	// ListReferrals returns one page of referrals matching f, newest
	// received first, and the total count of matches.
	ListReferrals(ctx context.Context, f ReferralFilter) ([]*Referral, int, error)
	// CountContacts returns, per referral id, the number of attended
	// contacts (none withdrawn as entered in error).
	CountContacts(ctx context.Context, referralIDs []string) (map[string]int, error)
	// ReportReferrals calls fn with the referrals in q's scope that may
	// count in its period, page by page (at most ReportPageSize each),
	// oldest received first (then by id), each with its plan's review date,
	// contacts and measures (none withdrawn as entered in error; no
	// measures with q.NoMeasures): those
	// received before q.To that are not yet closed (any status but
	// completed, failed, cancelled, rejected), or changed, or have a
	// contact or measure dated at or after q.From.
	// Referrals entered in error are never streamed. Each page is read in
	// one read transaction that has ended when fn is called; fn's error
	// stops the stream and is returned.
	ReportReferrals(ctx context.Context, q ReportQuery, fn func([]*ReportReferral) error) error
}

// BatchOp is one write of a batch (BatchStore.WriteBatch): an intake, as
// Store.CreateReferral stores it, or a change, as Store.UpdateReferral
// applies it. Exactly one of the two is set.
type BatchOp struct {
	Intake *Intake
	Change *ReferralChange
}

// BatchStore writes many referrals in one transaction: a bulk load (bench
// seed fills a store with a million referrals this way). A batch stores
// exactly what CreateReferral and UpdateReferral calls in the same order
// would; only the transactions differ, and how the rows are written:
// SQLite runs each op's statements from its per-request method's code,
// but writes a referral's row once for consecutive changes of it
// (docs/performance.md#a-referral-row-a-batch); PostgreSQL writes the
// batch table by table and falls back to op by op when that fails
// (docs/performance.md#a-batch-folded). Both backends implement it.
type BatchStore interface {
	// WriteBatch applies ops in order, all or nothing. An op fails as its
	// per-request method would (the same error codes); the whole batch is
	// then rolled back and the error, naming the op's index, returned
	// (ErrorCode still reads its code). A run of consecutive changes of a
	// referral whose first is stale fails at the run's last op, with the
	// first's message. An op with neither or both of Intake and Change is
	// EINVALID.
	WriteBatch(ctx context.Context, ops []BatchOp) error
}
