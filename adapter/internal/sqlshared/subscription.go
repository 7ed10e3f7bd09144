package sqlshared

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/linkbridge/linkbridge"
)

// SubscriptionColumns are the subscription table's columns in the order
// SubscriptionArgs writes them and ScanSubscription reads them (migration
// 016_subscription).
const SubscriptionColumns = `id, owner_client, owner_role, owner_ods, owner_practices, topic, filter_criteria, filters,
	endpoint, headers, payload_type, content, heartbeat_seconds, timeout_seconds, max_count, end_at, reason,
	status, error, events, base, version, created_at, updated_at, next_heartbeat_at`

// SubscriptionColumnCount is the number of SubscriptionColumns.
var SubscriptionColumnCount = len(strings.Split(SubscriptionColumns, ","))

// SubscriptionArgs returns the column values of a new subscription, in
// SubscriptionColumns order: JSON for the lists, whole seconds for the
// periods, and its first heartbeat due one period after now (NULL without
// a heartbeat period).
func SubscriptionArgs(s *linkbridge.Subscription, now time.Time, c Columns) ([]any, error) {
	js := func(v any) (string, error) {
		if v == nil {
			return "[]", nil
		}
		b, err := json.Marshal(v)
		return string(b), err
	}
	practices, err := js(nonNil(s.Owner.Practices))
	if err != nil {
		return nil, err
	}
	criteria, err := js(nonNil(s.FilterCriteria))
	if err != nil {
		return nil, err
	}
	filters, err := js(nonNilFilters(s.Filters))
	if err != nil {
		return nil, err
	}
	headers, err := js(nonNil(s.Headers))
	if err != nil {
		return nil, err
	}
	var next any
	if s.HeartbeatPeriod > 0 {
		next = c.Time(now.Add(s.HeartbeatPeriod))
	}
	return []any{s.ID, s.Owner.ClientID, string(s.Owner.Role), s.Owner.ODS, practices, s.Topic, criteria, filters,
		s.Endpoint, headers, s.PayloadType, string(s.Content), int64(s.HeartbeatPeriod / time.Second),
		int64(s.Timeout / time.Second), s.MaxCount, c.NullTime(s.End), s.Reason, string(s.Status), s.Error,
		s.EventsSinceStart, s.Base, s.Version, c.Time(s.CreatedAt), c.Time(s.UpdatedAt), next}, nil
}

func nonNilFilters(v []linkbridge.SubscriptionFilter) []linkbridge.SubscriptionFilter {
	if v == nil {
		return []linkbridge.SubscriptionFilter{}
	}
	return v
}

// SubscriptionRow holds a scanned subscription row's values that need
// converting; the adapters scan times their own way.
type SubscriptionRow struct {
	S                                          linkbridge.Subscription
	Practices, Criteria, Filters, Headers      []byte
	Role, Content, Status                      string
	HeartbeatSeconds, TimeoutSeconds, MaxCount int64
}

// Dest returns the scan destinations of the row's columns in
// SubscriptionColumns order, with end, created, updated and next heartbeat
// scanned into the given destinations (each adapter's time type).
func (r *SubscriptionRow) Dest(end, created, updated, next any) []any {
	s := &r.S
	return []any{&s.ID, &s.Owner.ClientID, &r.Role, &s.Owner.ODS, &r.Practices, &s.Topic, &r.Criteria, &r.Filters,
		&s.Endpoint, &r.Headers, &s.PayloadType, &r.Content, &r.HeartbeatSeconds, &r.TimeoutSeconds, &r.MaxCount, end,
		&s.Reason, &r.Status, &s.Error, &s.EventsSinceStart, &s.Base, &s.Version, created, updated, next}
}

// Subscription finishes the conversion of a scanned row.
func (r *SubscriptionRow) Subscription() (*linkbridge.Subscription, error) {
	s := r.S
	s.Owner.Role = linkbridge.Role(r.Role)
	s.Content = linkbridge.SubscriptionContent(r.Content)
	s.Status = linkbridge.SubscriptionStatus(r.Status)
	s.HeartbeatPeriod = time.Duration(r.HeartbeatSeconds) * time.Second
	s.Timeout = time.Duration(r.TimeoutSeconds) * time.Second
	s.MaxCount = int(r.MaxCount)
	for _, f := range []struct {
		src []byte
		dst any
	}{{r.Practices, &s.Owner.Practices}, {r.Criteria, &s.FilterCriteria}, {r.Filters, &s.Filters}, {r.Headers, &s.Headers}} {
		if len(f.src) == 0 {
			continue
		}
		if err := json.Unmarshal(f.src, f.dst); err != nil {
			return nil, fmt.Errorf("subscription %s: %w", s.ID, err)
		}
	}
	if len(s.Owner.Practices) == 0 {
		s.Owner.Practices = nil
	}
	if len(s.FilterCriteria) == 0 {
		s.FilterCriteria = nil
	}
	if len(s.Filters) == 0 {
		s.Filters = nil
	}
	if len(s.Headers) == 0 {
		s.Headers = nil
	}
	return &s, nil
}

// SubscriptionListLimit is the page size of ListSubscriptions when the
// query sets none.
const SubscriptionListLimit = 100

// EventMatch is one event a subscription records: the subscription and
// the topic event.
type EventMatch struct {
	Sub   *linkbridge.Subscription
	Event *linkbridge.TopicEvent
}

// MatchEvents returns the events of a referral change that each live
// subscription of subs records at now (linkbridge.Subscription.Matches),
// ordered by subscription id, then in the change's event order: the
// order in which the adapters number and queue them, so that two
// transactions take the subscriptions' rows in the same order.
func MatchEvents(subs []*linkbridge.Subscription, rf *linkbridge.Referral, evs []*linkbridge.TopicEvent, now time.Time) []EventMatch {
	sorted := slices.Clone(subs)
	slices.SortFunc(sorted, func(a, b *linkbridge.Subscription) int { return cmp.Compare(a.ID, b.ID) })
	var out []EventMatch
	for _, s := range sorted {
		for _, ev := range evs {
			if s.Matches(ev, rf, now) {
				out = append(out, EventMatch{Sub: s, Event: ev})
			}
		}
	}
	return out
}

// EventTopics returns the distinct topics of evs, sorted.
func EventTopics(evs []*linkbridge.TopicEvent) []string {
	var out []string
	for _, ev := range evs {
		if !slices.Contains(out, ev.Topic) {
			out = append(out, ev.Topic)
		}
	}
	slices.Sort(out)
	return out
}

// SubscriptionQueryLimit returns q's page size and checks its statuses.
func SubscriptionQueryLimit(q linkbridge.SubscriptionQuery) (int, error) {
	for _, st := range q.Statuses {
		if !st.Valid() {
			return 0, linkbridge.Errorf(linkbridge.EINVALID, "unknown subscription status %q", st)
		}
	}
	if q.Limit <= 0 {
		return SubscriptionListLimit, nil
	}
	return q.Limit, nil
}

// ValidateSubscriptionStatus returns EINVALID for a status a delivery
// cannot set (only active and error).
func ValidateSubscriptionStatus(st linkbridge.SubscriptionStatus) error {
	if st != linkbridge.SubscriptionActive && st != linkbridge.SubscriptionError {
		return linkbridge.Errorf(linkbridge.EINVALID, "a delivery sets a subscription active or error, not %q", st)
	}
	return nil
}

// EventTime is when a referral change's topic events happened: the new
// referral version's UpdatedAt, else (an intake) its ReceivedAt, else now.
func EventTime(ref *linkbridge.Referral, now time.Time) time.Time {
	switch {
	case !ref.UpdatedAt.IsZero():
		return ref.UpdatedAt.UTC()
	case !ref.ReceivedAt.IsZero():
		return ref.ReceivedAt.UTC()
	}
	return now.UTC()
}
