package fhirmap

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/linkbridge/linkbridge"

	ccodes "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	subpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/subscription_go_proto"
)

// Topic-based subscriptions in FHIR R4 (Subscriptions R5 Backport IG
// v1.1.0; docs/subscriptions.md): the Subscription profile's extensions,
// linkbridge's subscription topics, the filter criteria, and the
// notification Bundle.

// Backport IG canonicals.
const (
	backportSD = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
	// ProfileBackportSubscription is the R4/B topic-based Subscription.
	ProfileBackportSubscription = backportSD + "backport-subscription"
	// ProfileBackportNotification is the R4 notification Bundle.
	ProfileBackportNotification = backportSD + "backport-subscription-notification-r4"
	// ProfileBackportStatus is the R4 SubscriptionStatus Parameters.
	ProfileBackportStatus = backportSD + "backport-subscription-status-r4"
	// ExtFilterCriteria, ExtPayloadContent, ExtHeartbeatPeriod,
	// ExtTimeout, ExtMaxCount and ExtChannelType are the profile's
	// extensions.
	ExtFilterCriteria  = backportSD + "backport-filter-criteria"
	ExtPayloadContent  = backportSD + "backport-payload-content"
	ExtHeartbeatPeriod = backportSD + "backport-heartbeat-period"
	ExtTimeout         = backportSD + "backport-timeout"
	ExtMaxCount        = backportSD + "backport-max-count"
	ExtChannelType     = backportSD + "backport-channel-type"
	// ExtTopicCanonical advertises a topic on the CapabilityStatement's
	// Subscription resource.
	ExtTopicCanonical = backportSD + "capabilitystatement-subscriptiontopic-canonical"
	// OpStatus and OpEvents are the operations' definitions.
	OpStatus = "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-status"
	OpEvents = "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-events"
	// SDOHTaskTopic is the SDOH Clinical Care IG's Task topic
	// (docs/subscriptions.md#topics).
	SDOHTaskTopic = "http://hl7.org/fhir/us/sdoh-clinicalcare/SubscriptionTopic/Task"
)

// Topic is one subscription topic linkbridge publishes: its canonical URL,
// the id of the Basic resource that describes it (the IG's R4 form of a
// SubscriptionTopic), what triggers it and the filters it allows.
type Topic struct {
	URL, ID, Name, Title, Description string
	// Resources are the types whose new versions trigger it; Trigger
	// says which (the R5 resourceTrigger description).
	Resources []string
	Trigger   string
	// Interactions are create and/or update.
	Interactions []string
	// FilterBy are the search parameters a filter may use, per resource
	// type (besides _id).
	FilterBy map[string][]string
}

// Topic ids (the Basic resources' ids).
const (
	TopicReferralStatus = "referral-status"
	TopicCaseRecord     = "case-record"
	TopicSDOHTask       = "sdoh-task"
)

// taskFilters are the Task parameters a filter may use (the SDOH Task
// topic's canFilterBy, and patient).
var taskFilters = []string{"status", "owner", "requester", "patient", "code", "focus"}

// Topics returns the subscription topics linkbridge publishes; its own are
// under the deployment's system base.
func (s Systems) Topics() []Topic {
	base := s.Base() + "/SubscriptionTopic/"
	return []Topic{
		{
			URL: base + TopicReferralStatus, ID: TopicReferralStatus, Name: "ReferralStatus", Title: "Referral Task status changed",
			Description: "A referral's Task was created (status requested) or its status changed (accepted, in-progress, on-hold, completed, rejected, cancelled, ...): the closed-loop referral status the referrer and the MDT follow.",
			Resources:   []string{"Task"}, Trigger: "A referral Task is created, or a new version of it has another status.",
			Interactions: []string{"create", "update"}, FilterBy: map[string][]string{"Task": taskFilters},
		},
		{
			URL: base + TopicCaseRecord, ID: TopicCaseRecord, Name: "CaseRecord", Title: "Case record updated",
			Description: "The link worker's case record changed: the care and support plan (CarePlan) and its goals (Goal), contacts (Encounter) or outcome measures (Observation) were recorded, amended or withdrawn.",
			Resources:   []string{"CarePlan", "Goal", "Encounter", "Observation"}, Trigger: "A new version of a referral's CarePlan, Goal, Encounter or Observation is stored.",
			Interactions: []string{"create", "update"},
			FilterBy: map[string][]string{
				"CarePlan": {"patient", "status"}, "Goal": {"patient", "lifecycle-status", "achievement-status"},
				"Encounter": {"patient", "status"}, "Observation": {"patient", "code", "status"},
			},
		},
		{
			URL: SDOHTaskTopic, ID: TopicSDOHTask, Name: "SDOHCCTask", Title: "SDOH Clinical Care referral Task",
			Description: "The SDOH Clinical Care IG's Task topic: every new version of a referral Task (created or updated).",
			Resources:   []string{"Task"}, Trigger: "A referral Task is created or updated.",
			Interactions: []string{"create", "update"}, FilterBy: map[string][]string{"Task": taskFilters},
		},
	}
}

// TopicByURL returns the topic with a canonical URL (a version suffix
// "|v" is ignored), or false.
func (s Systems) TopicByURL(u string) (Topic, bool) {
	u, _, _ = strings.Cut(u, "|")
	for _, t := range s.Topics() {
		if t.URL == u {
			return t, true
		}
	}
	return Topic{}, false
}

// TopicByID returns the topic whose Basic resource has id, or false.
func (s Systems) TopicByID(id string) (Topic, bool) {
	for _, t := range s.Topics() {
		if t.ID == id {
			return t, true
		}
	}
	return Topic{}, false
}

// Limits of filter criteria, so that a subscription's filters stay small.
const (
	maxFilterCriteria = 10
	maxFilterLength   = 1024
	maxFilterValues   = 50
)

// ParseFilterCriteria reads one backport-filter-criteria value of a
// subscription to topic t: "[Type?]name=value[,value...][&name=value...]",
// search-style. A Type must be one of the topic's resources; without one,
// the filter applies to every event and its parameters must be allowed
// for every resource of the topic. Each parameter must be one the topic
// allows (Topic.FilterBy) or _id, without modifiers; a reference's bare
// id stands for the parameter's single target type (patient=123 is
// Patient/123). Values are ORed, parameters ANDed. It returns
// EUNPROCESSABLE naming Subscription.criteria for anything else.
func ParseFilterCriteria(t Topic, criteria string) ([]linkbridge.SubscriptionFilter, error) {
	bad := func(format string, args ...any) error {
		return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "filter criteria: "+format, args...).At("Subscription.criteria")
	}
	if len(criteria) > maxFilterLength {
		return nil, bad("longer than %d characters", maxFilterLength)
	}
	typ, query, hasType := strings.Cut(criteria, "?")
	if !hasType {
		typ, query = "", criteria
	}
	types := t.Resources
	if hasType {
		if !slices.Contains(t.Resources, typ) {
			return nil, bad("%q is not a resource of topic %s (%s)", typ, t.URL, strings.Join(t.Resources, ", "))
		}
		types = []string{typ}
	}
	if strings.TrimSpace(query) == "" {
		return nil, bad("no parameter")
	}
	vals, err := url.ParseQuery(query)
	if err != nil {
		return nil, bad("not a query string: %s", err)
	}
	var out []linkbridge.SubscriptionFilter
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range vals {
			if !yield(k) {
				return
			}
		}
	}) {
		if strings.Contains(name, ":") || strings.Contains(name, ".") {
			return nil, bad("parameter %q: modifiers and chains are not supported", name)
		}
		for _, typ := range types {
			if name != "_id" && !slices.Contains(t.FilterBy[typ], name) {
				return nil, bad("parameter %q is not a filter of %s in topic %s", name, typ, t.URL)
			}
		}
		for _, v := range vals[name] {
			var values []string
			for _, part := range linkbridge.SplitSearchValues(v) { // escapes kept: SubscriptionFilter.Matches reads them
				if part == "" {
					return nil, bad("parameter %q has an empty value", name)
				}
				values = append(values, part)
			}
			if len(values) > maxFilterValues {
				return nil, bad("parameter %q has more than %d values", name, maxFilterValues)
			}
			f := linkbridge.SubscriptionFilter{Name: name, Values: values}
			if hasType {
				f.ResourceType = typ
			}
			if p, ok := LookupSearchParameter(types[0], name); ok && p.Type == SearchReference {
				f.Values = expandReferenceValues(p, values)
				if t := refTargetOf(f.Values); t != "" {
					f.Name = ReferenceIndexName(types[0], name, t)
				}
			}
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, bad("no parameter")
	}
	if len(out) > maxFilterCriteria {
		return nil, bad("more than %d parameters", maxFilterCriteria)
	}
	return out, nil
}

// expandReferenceValues turns a bare id into Target/id when the parameter
// has a single target type (as a search does).
func expandReferenceValues(p SearchParameter, values []string) []string {
	out := make([]string, len(values))
	for i, v := range values {
		if !strings.Contains(v, "/") && len(p.Targets) == 1 {
			v = p.Targets[0] + "/" + v
		}
		out[i] = v
	}
	return out
}

// refTargetOf returns the one type all references name ("" when they
// differ or name none).
func refTargetOf(values []string) string {
	t := ""
	for _, v := range values {
		typ, _, ok := strings.Cut(v, "/")
		if !ok || t != "" && t != typ {
			return ""
		}
		t = typ
	}
	return t
}

// ext returns the extensions of exts with url.
func ext(exts []*dpb.Extension, u string) []*dpb.Extension {
	var out []*dpb.Extension
	for _, e := range exts {
		if e.GetUrl().GetValue() == u {
			out = append(out, e)
		}
	}
	return out
}

// extSeconds reads a backport unsignedInt/positiveInt seconds extension
// (at most one).
func extSeconds(exts []*dpb.Extension, u, path string) (int, error) {
	es := ext(exts, u)
	switch len(es) {
	case 0:
		return 0, nil
	case 1:
	default:
		return 0, linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "%s is given more than once", u).At(path)
	}
	v := es[0].GetValue()
	switch {
	case v.GetUnsignedInt() != nil:
		return int(v.GetUnsignedInt().GetValue()), nil
	case v.GetPositiveInt() != nil:
		return int(v.GetPositiveInt().GetValue()), nil
	case v.GetInteger() != nil && v.GetInteger().GetValue() >= 0:
		return int(v.GetInteger().GetValue()), nil
	}
	return 0, linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "%s needs a non-negative integer value", u).At(path)
}

// maxHeaders bounds Subscription.channel.header.
const maxHeaders = 10

// SubscriptionFrom reads a client's Subscription (backport profile) into
// a new subscription: topic from criteria (one of linkbridge's topics),
// filters from its backport-filter-criteria, a rest-hook channel with its
// endpoint, payload MIME type and backport-payload-content, headers,
// heartbeat period, timeout and max count, end and reason. The endpoint
// is not checked here (see the caller's endpoint policy). Anything the
// gateway cannot honour is EUNPROCESSABLE with the element's path.
func (s Systems) SubscriptionFrom(sub *subpb.Subscription) (*linkbridge.Subscription, error) {
	bad := func(path, format string, args ...any) error {
		return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, format, args...).At(path)
	}
	if st := sub.GetStatus().GetValue(); st != ccodes.SubscriptionStatusCode_INVALID_UNINITIALIZED &&
		st != ccodes.SubscriptionStatusCode_REQUESTED && st != ccodes.SubscriptionStatusCode_ACTIVE {
		return nil, bad("Subscription.status", "a new Subscription is requested (the server sets it active after the handshake), not %s", Code(sub.GetStatus()))
	}
	topicURL := sub.GetCriteria().GetValue()
	topic, ok := s.TopicByURL(topicURL)
	if !ok {
		return nil, bad("Subscription.criteria", "Subscription.criteria must be the canonical URL of a subscription topic linkbridge publishes (GET /fhir/Basic?code=SubscriptionTopic), not %q", topicURL)
	}
	out := &linkbridge.Subscription{Topic: topic.URL, Reason: sub.GetReason().GetValue()}
	criteria := ext(sub.GetCriteria().GetExtension(), ExtFilterCriteria)
	if len(criteria) > maxFilterCriteria {
		return nil, bad("Subscription.criteria", "at most %d filter criteria", maxFilterCriteria)
	}
	for _, e := range criteria {
		c := e.GetValue().GetStringValue().GetValue()
		fs, err := ParseFilterCriteria(topic, c)
		if err != nil {
			return nil, err
		}
		out.FilterCriteria = append(out.FilterCriteria, c)
		out.Filters = append(out.Filters, fs...)
	}
	if len(out.Filters) > maxFilterCriteria {
		return nil, bad("Subscription.criteria", "at most %d filter parameters in all", maxFilterCriteria)
	}
	ch := sub.GetChannel()
	if ch.GetType().GetValue() != ccodes.SubscriptionChannelTypeCode_REST_HOOK || len(ext(ch.GetType().GetExtension(), ExtChannelType)) > 0 {
		return nil, bad("Subscription.channel.type", "only the rest-hook channel is supported")
	}
	out.Endpoint = ch.GetEndpoint().GetValue()
	if out.Endpoint == "" {
		return nil, bad("Subscription.channel.endpoint", "Subscription.channel.endpoint is required for a rest-hook")
	}
	out.PayloadType = ch.GetPayload().GetValue()
	switch out.PayloadType {
	case "application/fhir+json", "application/fhir+xml":
	case "application/json":
		out.PayloadType = "application/fhir+json"
	default:
		return nil, bad("Subscription.channel.payload", "Subscription.channel.payload must be application/fhir+json or application/fhir+xml")
	}
	contents := ext(ch.GetPayload().GetExtension(), ExtPayloadContent)
	switch len(contents) {
	case 0:
		return nil, bad("Subscription.channel.payload", "the payload needs its content extension (%s): empty, id-only or full-resource", ExtPayloadContent)
	case 1:
		out.Content = linkbridge.SubscriptionContent(contents[0].GetValue().GetCode().GetValue())
	default:
		return nil, bad("Subscription.channel.payload", "the payload content is given more than once")
	}
	if !out.Content.Valid() {
		return nil, bad("Subscription.channel.payload", "payload content must be empty, id-only or full-resource, not %q", out.Content)
	}
	if len(ch.GetHeader()) > maxHeaders {
		return nil, bad("Subscription.channel.header", "at most %d headers", maxHeaders)
	}
	for _, h := range ch.GetHeader() {
		line := h.GetValue()
		name, value, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || !validHeaderName(name) || strings.ContainsAny(value, "\r\n") || len(line) > 4096 {
			return nil, bad("Subscription.channel.header", "a header must be \"Name: value\" on one line")
		}
		switch strings.ToLower(name) {
		case "host", "content-type", "content-length", "transfer-encoding", "connection", "te", "upgrade", "trailer", "keep-alive", "proxy-authorization":
			return nil, bad("Subscription.channel.header", "header %s is set by the gateway", name)
		}
		out.Headers = append(out.Headers, name+": "+strings.TrimSpace(value))
	}
	hb, err := extSeconds(ch.GetExtension(), ExtHeartbeatPeriod, "Subscription.channel")
	if err != nil {
		return nil, err
	}
	to, err := extSeconds(ch.GetExtension(), ExtTimeout, "Subscription.channel")
	if err != nil {
		return nil, err
	}
	mc, err := extSeconds(ch.GetExtension(), ExtMaxCount, "Subscription.channel")
	if err != nil {
		return nil, err
	}
	out.HeartbeatPeriod, out.Timeout, out.MaxCount = time.Duration(hb)*time.Second, time.Duration(to)*time.Second, mc
	if e := sub.GetEnd(); e != nil {
		out.End = time.UnixMicro(e.GetValueUs()).UTC()
	}
	return out, nil
}

// validHeaderName reports whether n is an HTTP header field name (RFC 9110
// token).
func validHeaderName(n string) bool {
	if n == "" {
		return false
	}
	for _, c := range []byte(n) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// The JSON shapes the subscription resources are built from. They are
// rendered with encoding/json and then, like every FHIR resource the
// gateway sends, parsed and rendered by jsonformat (the caller's
// fhirjson.Codec), which checks them.
type (
	jsonExt struct {
		URL              string    `json:"url"`
		ValueString      string    `json:"valueString,omitempty"`
		ValueCode        string    `json:"valueCode,omitempty"`
		ValueURI         string    `json:"valueUri,omitempty"`
		ValueMarkdown    string    `json:"valueMarkdown,omitempty"`
		ValueCanonical   string    `json:"valueCanonical,omitempty"`
		ValueUnsignedInt *int      `json:"valueUnsignedInt,omitempty"`
		ValuePositiveInt *int      `json:"valuePositiveInt,omitempty"`
		Extension        []jsonExt `json:"extension,omitempty"`
	}
	jsonElem struct {
		Extension []jsonExt `json:"extension,omitempty"`
	}
	jsonMeta struct {
		VersionID   string   `json:"versionId,omitempty"`
		LastUpdated string   `json:"lastUpdated,omitempty"`
		Profile     []string `json:"profile,omitempty"`
	}
)

// instant renders a time as a FHIR instant (UTC, to the microsecond).
func instant(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z07:00") }

// RedactedHeader replaces a channel header's value when a Subscription is
// served: headers may carry the endpoint's credentials.
const RedactedHeader = "(redacted)"

// SubscriptionJSON renders a subscription as the backport profile's R4
// Subscription (headers' values redacted).
func SubscriptionJSON(s *linkbridge.Subscription) ([]byte, error) {
	type channel struct {
		Extension []jsonExt `json:"extension,omitempty"`
		Type      string    `json:"type"`
		Endpoint  string    `json:"endpoint"`
		Payload   string    `json:"payload"`
		PayloadX  jsonElem  `json:"_payload"`
		Header    []string  `json:"header,omitempty"`
	}
	type resource struct {
		ResourceType string    `json:"resourceType"`
		ID           string    `json:"id"`
		Meta         jsonMeta  `json:"meta"`
		Status       string    `json:"status"`
		End          string    `json:"end,omitempty"`
		Reason       string    `json:"reason"`
		Criteria     string    `json:"criteria"`
		CriteriaX    *jsonElem `json:"_criteria,omitempty"`
		Error        string    `json:"error,omitempty"`
		Channel      channel   `json:"channel"`
	}
	r := resource{ResourceType: "Subscription", ID: s.ID, Status: string(s.Status), Reason: s.Reason, Criteria: s.Topic,
		Error: s.Error,
		Meta: jsonMeta{VersionID: strconv.Itoa(max(s.Version, 1)), LastUpdated: instant(s.UpdatedAt),
			Profile: []string{ProfileBackportSubscription}},
		Channel: channel{Type: "rest-hook", Endpoint: s.Endpoint, Payload: s.PayloadType,
			PayloadX: jsonElem{Extension: []jsonExt{{URL: ExtPayloadContent, ValueCode: string(s.Content)}}}},
	}
	if r.Reason == "" {
		r.Reason = "(none given)"
	}
	if !s.End.IsZero() {
		r.End = instant(s.End)
	}
	if len(s.FilterCriteria) > 0 {
		r.CriteriaX = &jsonElem{}
		for _, c := range s.FilterCriteria {
			r.CriteriaX.Extension = append(r.CriteriaX.Extension, jsonExt{URL: ExtFilterCriteria, ValueString: c})
		}
	}
	secs := func(d time.Duration) *int { n := int(d / time.Second); return &n }
	if s.HeartbeatPeriod > 0 {
		r.Channel.Extension = append(r.Channel.Extension, jsonExt{URL: ExtHeartbeatPeriod, ValueUnsignedInt: secs(s.HeartbeatPeriod)})
	}
	if s.Timeout > 0 {
		r.Channel.Extension = append(r.Channel.Extension, jsonExt{URL: ExtTimeout, ValueUnsignedInt: secs(s.Timeout)})
	}
	if s.MaxCount > 0 {
		n := s.MaxCount
		r.Channel.Extension = append(r.Channel.Extension, jsonExt{URL: ExtMaxCount, ValuePositiveInt: &n})
	}
	for _, h := range s.Headers {
		name, _, _ := strings.Cut(h, ":")
		r.Channel.Header = append(r.Channel.Header, name+": "+RedactedHeader)
	}
	return json.Marshal(r)
}

// TopicBasicJSON renders a topic as the IG's R4 representation of a
// SubscriptionTopic: a Basic resource (code fhir-types#SubscriptionTopic)
// carrying the topic's elements as cross-version extensions.
func TopicBasicJSON(t Topic) ([]byte, error) {
	const r5 = "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic."
	const r43 = "http://hl7.org/fhir/4.3/StructureDefinition/extension-SubscriptionTopic."
	exts := []jsonExt{
		{URL: r5 + "url", ValueURI: t.URL},
		{URL: r5 + "name", ValueString: t.Name},
		{URL: r5 + "title", ValueString: t.Title},
		{URL: r5 + "description", ValueMarkdown: t.Description},
	}
	for _, typ := range t.Resources {
		trig := jsonExt{URL: r43 + "resourceTrigger", Extension: []jsonExt{
			{URL: "description", ValueMarkdown: t.Trigger},
			{URL: "resource", ValueURI: "http://hl7.org/fhir/StructureDefinition/" + typ},
		}}
		for _, in := range t.Interactions {
			trig.Extension = append(trig.Extension, jsonExt{URL: "supportedInteraction", ValueCode: in})
		}
		exts = append(exts, trig)
	}
	for _, typ := range t.Resources {
		for _, p := range append([]string{"_id"}, t.FilterBy[typ]...) {
			exts = append(exts, jsonExt{URL: r43 + "canFilterBy", Extension: []jsonExt{
				{URL: "description", ValueMarkdown: "Filter " + typ + " events by " + p + "."},
				{URL: "resource", ValueURI: typ},
				{URL: "filterParameter", ValueString: p},
			}})
		}
	}
	type coding struct {
		System string `json:"system"`
		Code   string `json:"code"`
	}
	type resource struct {
		ResourceType      string    `json:"resourceType"`
		ID                string    `json:"id"`
		Extension         []jsonExt `json:"extension"`
		ModifierExtension []jsonExt `json:"modifierExtension"`
		Code              struct {
			Coding []coding `json:"coding"`
		} `json:"code"`
	}
	r := resource{ResourceType: "Basic", ID: t.ID, Extension: exts,
		ModifierExtension: []jsonExt{{URL: r5 + "status", ValueCode: "active"}}}
	r.Code.Coding = []coding{{System: "http://hl7.org/fhir/fhir-types", Code: "SubscriptionTopic"}}
	return json.Marshal(r)
}

// Notification is one notification Bundle to render: of a subscription, of
// a type, reporting a status, with the events it carries (event
// notifications and $events).
type Notification struct {
	Sub *linkbridge.Subscription
	// Type is handshake, heartbeat, event-notification, query-status or
	// query-event.
	Type string
	// Status is the subscription's status the notification reports.
	Status linkbridge.SubscriptionStatus
	// EventsSinceStart is the count it reports.
	EventsSinceStart int64
	Events           []NotificationEvent
	// BundleID and StatusID are new ids; Timestamp is when it is
	// rendered.
	BundleID, StatusID string
	Timestamp          time.Time
	// Error, when set, is reported as the status's error (query-status).
	Error string
}

// NotificationEvent is one event of a notification: the event and, for a
// full-resource payload, the focus resource version (nil: the resource is
// not sent; its entry then carries only its request and response).
type NotificationEvent struct {
	Event    *linkbridge.SubscriptionEvent
	Resource *linkbridge.Resource
}

// NotificationJSON renders a notification as an R4 notification Bundle
// (history), its first entry the SubscriptionStatus Parameters. With an
// empty payload neither the topic nor the focus is named and no resource
// entry follows; with id-only each focus is named, and its entry has its
// URL and request but no resource; with full-resource its entry has the
// resource version as stored.
func NotificationJSON(n Notification) ([]byte, error) {
	type param struct {
		Name           string          `json:"name"`
		ValueString    string          `json:"valueString,omitempty"`
		ValueCode      string          `json:"valueCode,omitempty"`
		ValueCanonical string          `json:"valueCanonical,omitempty"`
		ValueInstant   string          `json:"valueInstant,omitempty"`
		ValueRef       json.RawMessage `json:"valueReference,omitempty"`
		ValueCC        json.RawMessage `json:"valueCodeableConcept,omitempty"`
		Part           []param         `json:"part,omitempty"`
	}
	ref := func(u string) json.RawMessage {
		b, _ := json.Marshal(map[string]string{"reference": u})
		return b
	}
	type request struct {
		Method string `json:"method"`
		URL    string `json:"url"`
	}
	type response struct {
		Status string `json:"status"`
	}
	type entry struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource,omitempty"`
		Request  request         `json:"request"`
		Response response        `json:"response"`
	}
	s := n.Sub
	subURL := s.Base + "/Subscription/" + s.ID
	params := []param{{Name: "subscription", ValueRef: ref(subURL)}}
	if s.Content != linkbridge.ContentEmpty {
		params = append(params, param{Name: "topic", ValueCanonical: s.Topic})
	}
	params = append(params,
		param{Name: "status", ValueCode: string(n.Status)},
		param{Name: "type", ValueCode: n.Type},
		param{Name: "events-since-subscription-start", ValueString: strconv.FormatInt(n.EventsSinceStart, 10)})
	var entries []entry
	for _, e := range n.Events {
		ev := e.Event
		p := param{Name: "notification-event", Part: []param{
			{Name: "event-number", ValueString: strconv.FormatInt(ev.Number, 10)},
			{Name: "timestamp", ValueInstant: instant(ev.At)},
		}}
		if s.Content != linkbridge.ContentEmpty {
			focus := s.Base + "/" + ev.FocusType + "/" + ev.FocusID
			p.Part = append(p.Part, param{Name: "focus", ValueRef: ref(focus)})
			method, status := "PUT", "200"
			if ev.FocusVersion == 1 {
				method, status = "POST", "201"
			}
			en := entry{FullURL: focus, Request: request{Method: method, URL: ev.FocusType + "/" + ev.FocusID},
				Response: response{Status: status}}
			if method == "POST" {
				en.Request.URL = ev.FocusType
			}
			if s.Content == linkbridge.ContentFullResource && e.Resource != nil {
				en.Resource = e.Resource.Body
			}
			entries = append(entries, en)
		}
		params = append(params, p)
	}
	if n.Error != "" {
		cc, _ := json.Marshal(map[string]string{"text": n.Error})
		params = append(params, param{Name: "error", ValueCC: cc})
	}
	status := struct {
		ResourceType string   `json:"resourceType"`
		ID           string   `json:"id"`
		Meta         jsonMeta `json:"meta"`
		Parameter    []param  `json:"parameter"`
	}{"Parameters", n.StatusID, jsonMeta{Profile: []string{ProfileBackportStatus}}, params}
	sb, err := json.Marshal(status)
	if err != nil {
		return nil, fmt.Errorf("fhirmap: notification status: %w", err)
	}
	all := append([]entry{{FullURL: "urn:uuid:" + n.StatusID, Resource: sb,
		Request: request{Method: "GET", URL: subURL + "/$status"}, Response: response{Status: "200"}}}, entries...)
	return json.Marshal(struct {
		ResourceType string   `json:"resourceType"`
		ID           string   `json:"id"`
		Meta         jsonMeta `json:"meta"`
		Type         string   `json:"type"`
		Timestamp    string   `json:"timestamp"`
		Entry        []entry  `json:"entry"`
	}{"Bundle", n.BundleID, jsonMeta{Profile: []string{ProfileBackportNotification}}, "history", instant(n.Timestamp), all})
}

// TopicEvents returns the subscription topic events of new versions of a
// referral's resources (an intake's or a change's, docs/subscriptions.md#topics):
// every Task version is an SDOH Task event, and a referral-status event
// when it is version 1 or statusChanged; every CarePlan, Goal, Encounter
// and Observation version is a case-record event. Other types cause none.
func (s Systems) TopicEvents(versions []*linkbridge.Resource, statusChanged bool) []*linkbridge.TopicEvent {
	var out []*linkbridge.TopicEvent
	base := s.Base() + "/SubscriptionTopic/"
	for _, r := range versions {
		switch r.Type {
		case "Task":
			if r.VersionID == 1 || statusChanged {
				out = append(out, &linkbridge.TopicEvent{Topic: base + TopicReferralStatus, Focus: r})
			}
			out = append(out, &linkbridge.TopicEvent{Topic: SDOHTaskTopic, Focus: r})
		case "CarePlan", "Goal", "Encounter", "Observation":
			out = append(out, &linkbridge.TopicEvent{Topic: base + TopicCaseRecord, Focus: r})
		}
	}
	return out
}
