package httpapi

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gorilla/mux"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/fhirmap"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	subpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/subscription_go_proto"
)

// Topic-based subscriptions (Subscriptions Backport IG; docs/subscriptions.md):
// POST, GET and DELETE /fhir/Subscription, search, $status and $events, and
// the topics as Basic resources. A subscription belongs to the organisation
// of the client that created it: only that organisation's clients read,
// search or delete it (another's is 404, as if it did not exist), and only
// events of referrals the creating client may read reach it.

// EndpointPolicy checks a rest-hook endpoint when a Subscription is created
// (adapter/resthook.Policy): EUNPROCESSABLE naming
// Subscription.channel.endpoint when it is not allowed.
type EndpointPolicy interface {
	CheckEndpoint(raw string) error
}

// registerSubscriptionRoutes adds the subscription routes to the FHIR
// router, before the generic type routes.
func (s *Server) registerSubscriptionRoutes(f *mux.Router) {
	f.Handle("/fhir/Subscription", s.fhir(s.handleSubscriptionCreate)).Methods(http.MethodPost)
	f.Handle("/fhir/Subscription", s.fhir(s.handleSubscriptionSearch)).Methods(http.MethodGet)
	f.Handle("/fhir/Subscription/$status", s.fhir(s.handleSubscriptionStatus)).Methods(http.MethodGet)
	f.Handle("/fhir/Subscription/{id}/$status", s.fhir(s.handleSubscriptionStatus)).Methods(http.MethodGet)
	f.Handle("/fhir/Subscription/{id}/$events", s.fhir(s.handleSubscriptionEvents)).Methods(http.MethodGet)
	f.Handle("/fhir/Subscription/{id}", s.fhir(s.handleSubscriptionRead)).Methods(http.MethodGet)
	f.Handle("/fhir/Subscription/{id}", s.fhir(s.handleSubscriptionDelete)).Methods(http.MethodDelete)
	f.Handle("/fhir/Basic", s.fhir(s.handleTopicSearch)).Methods(http.MethodGet)
	f.Handle("/fhir/Basic/{id}", s.fhir(s.handleTopicRead)).Methods(http.MethodGet)
}

// subscriptionsOff is the answer of the subscription routes of a server
// without a subscription store.
func subscriptionsOff() error {
	return linkbridge.Errorf(linkbridge.ENOTFOUND, "this gateway offers no subscriptions")
}

// ownerQuery is the store query of the caller's subscriptions.
func ownerQuery(r *http.Request) linkbridge.SubscriptionQuery {
	p := linkbridge.PrincipalFromContext(r.Context())
	if p == nil {
		return linkbridge.SubscriptionQuery{OwnerODS: ""}
	}
	return linkbridge.SubscriptionQuery{OwnerODS: p.ODS}
}

// ownSubscription returns the caller's subscription id, or ENOTFOUND (also
// for another organisation's: it is not disclosed).
func (s *Server) ownSubscription(r *http.Request, id string) (*linkbridge.Subscription, error) {
	if s.Subscriptions == nil {
		return nil, subscriptionsOff()
	}
	sub, err := s.Subscriptions.GetSubscription(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if sub.Owner.ODS != ownerQuery(r).OwnerODS {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "Subscription/%s not found", id)
	}
	return sub, nil
}

// subscriptionJSON renders a subscription through jsonformat.
func (s *Server) subscriptionJSON(sub *linkbridge.Subscription) ([]byte, error) {
	raw, err := fhirmap.SubscriptionJSON(sub)
	if err != nil {
		return nil, err
	}
	return s.canonical(raw)
}

// canonical parses FHIR JSON the gateway built and renders it with
// jsonformat, which checks it.
func (s *Server) canonical(raw []byte) ([]byte, error) {
	cr, err := s.parse(raw)
	if err != nil {
		return nil, linkbridge.Errorf(linkbridge.EINTERNAL, "rendered resource is not valid FHIR: %v", err)
	}
	return s.Codec.EncodeContained(cr)
}

// handleSubscriptionCreate answers POST /fhir/Subscription: a backport
// Subscription to one of linkbridge's topics with a rest-hook channel to an
// allowed endpoint. It is stored requested, its handshake queued; 201 with
// the Subscription.
func (s *Server) handleSubscriptionCreate(w http.ResponseWriter, r *http.Request) error {
	if s.Subscriptions == nil {
		return subscriptionsOff()
	}
	in, _, err := readAs[*subpb.Subscription](s, w, r, "POST /fhir/Subscription", "")
	if err != nil {
		return err
	}
	sub, err := s.Systems.SubscriptionFrom(in)
	if err != nil {
		return err
	}
	p := linkbridge.PrincipalFromContext(r.Context())
	if p != nil {
		topic, _ := s.Systems.TopicByURL(sub.Topic)
		for _, typ := range topic.Resources {
			if !p.HasScope(typ, linkbridge.ScopeRead) {
				return linkbridge.Errorf(linkbridge.EFORBIDDEN, "the token's scopes do not allow read on %s, which topic %s notifies", typ, topic.URL).At("Subscription.criteria")
			}
		}
	}
	if s.SubscriptionEndpoints == nil {
		return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "no rest-hook endpoints are allowed on this gateway").At("Subscription.channel.endpoint")
	}
	if err := s.SubscriptionEndpoints.CheckEndpoint(sub.Endpoint); err != nil {
		return err
	}
	now := s.now()
	if !sub.End.IsZero() && !sub.End.After(now) {
		return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "Subscription.end is in the past").At("Subscription.end")
	}
	sub.ID, sub.Owner, sub.Base = s.newID(), linkbridge.OwnerOf(p), s.baseURL(r)
	if err := s.Subscriptions.CreateSubscription(r.Context(), sub, now); err != nil {
		return err
	}
	if s.OnSubscription != nil {
		s.OnSubscription()
	}
	s.Logger.InfoContext(r.Context(), "subscription created", "subscription_id", sub.ID, "topic", sub.Topic, "content", string(sub.Content))
	body, err := s.subscriptionJSON(sub)
	if err != nil {
		return err
	}
	res := &linkbridge.Resource{Type: "Subscription", ID: sub.ID, VersionID: sub.Version, LastUpdated: sub.UpdatedAt, Body: body}
	return s.writeWriteResult(w, r, res, http.StatusCreated, "Subscription created: requested until its handshake is delivered")
}

// handleSubscriptionRead answers GET /fhir/Subscription/{id}.
func (s *Server) handleSubscriptionRead(w http.ResponseWriter, r *http.Request) error {
	sub, err := s.ownSubscription(r, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	body, err := s.subscriptionJSON(sub)
	if err != nil {
		return err
	}
	writeResource(w, &linkbridge.Resource{Type: "Subscription", ID: sub.ID, VersionID: sub.Version, LastUpdated: sub.UpdatedAt, Body: body})
	return nil
}

// handleSubscriptionDelete answers DELETE /fhir/Subscription/{id}: the
// subscription, its event log and its undelivered notifications are gone;
// 200 with an OperationOutcome.
func (s *Server) handleSubscriptionDelete(w http.ResponseWriter, r *http.Request) error {
	sub, err := s.ownSubscription(r, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	if err := s.Subscriptions.DeleteSubscription(r.Context(), sub.ID); err != nil {
		return err
	}
	s.Logger.InfoContext(r.Context(), "subscription deleted", "subscription_id", sub.ID)
	body, err := s.Codec.Encode(fhirjson.InformationOutcome("Subscription/" + sub.ID + " deleted"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", ContentTypeFHIR)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return nil
}

// subscriptionSearchParams are the parameters GET /fhir/Subscription
// takes: _id, status, url (the endpoint), criteria (the topic, as the
// backport's topic parameter), _count and _offset.
var subscriptionSearchParams = []string{"_id", "status", "url", "criteria", "topic", "_count", "_offset", "_format", "_pretty"}

// handleSubscriptionSearch answers GET /fhir/Subscription with a searchset
// of the caller's subscriptions.
func (s *Server) handleSubscriptionSearch(w http.ResponseWriter, r *http.Request) error {
	if s.Subscriptions == nil {
		return subscriptionsOff()
	}
	vals := r.URL.Query()
	var unknown []string
	for _, k := range slices.Sorted(maps.Keys(vals)) {
		if !slices.Contains(subscriptionSearchParams, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 && !lenient(r) {
		return linkbridge.Errorf(linkbridge.EINVALID, "unsupported search parameters: %s; nothing was searched (Prefer: handling=lenient ignores them)",
			strings.Join(unknown, ", ")).At(unknown...)
	}
	q := ownerQuery(r)
	for _, v := range vals["_id"] {
		q.IDs = append(q.IDs, splitComma(v)...)
	}
	for _, v := range vals["status"] {
		for _, st := range splitComma(v) {
			if !linkbridge.SubscriptionStatus(st).Valid() {
				return linkbridge.Errorf(linkbridge.EINVALID, "status must be requested, active, error or off").At("status")
			}
			q.Statuses = append(q.Statuses, linkbridge.SubscriptionStatus(st))
		}
	}
	for _, k := range []string{"criteria", "topic"} {
		if v := vals.Get(k); v != "" {
			q.Topic = v
		}
	}
	count, offset := defaultCount, 0
	if err := queryInts(vals, map[string]*int{"_count": &count, "_offset": &offset}); err != nil {
		return err
	}
	count = min(max(count, 1), maxCount)
	q.Limit, q.Offset = count+1, offset
	subs, err := s.Subscriptions.ListSubscriptions(r.Context(), q)
	if err != nil {
		return err
	}
	if u := vals.Get("url"); u != "" {
		subs = slices.DeleteFunc(subs, func(x *linkbridge.Subscription) bool { return x.Endpoint != u })
	}
	more := len(subs) > count
	if more {
		subs = subs[:count]
	}
	base := s.baseURL(r)
	b := &rpb.Bundle{Id: &dpb.Id{Value: s.newID()}, Type: bundleType("searchset")}
	used := url.Values{}
	for k, v := range vals {
		if slices.Contains(subscriptionSearchParams, k) && k != "_count" && k != "_offset" {
			used[k] = v
		}
	}
	total := offset + len(subs)
	if more {
		total++
	} else {
		b.Total = &dpb.UnsignedInt{Value: uint32(total)}
	}
	b.Link = pageLinks(base+"/Subscription", used, &linkbridge.ResourceQuery{Count: count, Offset: offset}, total)
	entries := make([]bundleEntry, 0, len(subs))
	for _, sub := range subs {
		body, err := s.subscriptionJSON(sub)
		if err != nil {
			return err
		}
		entries = append(entries, searchEntry(base, &linkbridge.Resource{Type: "Subscription", ID: sub.ID, Body: body}, "match"))
	}
	return s.writeBundle(w, b, entries)
}

// handleSubscriptionStatus answers GET /fhir/Subscription/{id}/$status and
// GET /fhir/Subscription/$status?id=..&status=..: a searchset Bundle of one
// SubscriptionStatus (Parameters, type query-status) per subscription of
// the caller's asked for, reporting its status, the number of its last
// event and, in error, why.
func (s *Server) handleSubscriptionStatus(w http.ResponseWriter, r *http.Request) error {
	if s.Subscriptions == nil {
		return subscriptionsOff()
	}
	var subs []*linkbridge.Subscription
	if id := mux.Vars(r)["id"]; id != "" {
		sub, err := s.ownSubscription(r, id)
		if err != nil {
			return err
		}
		subs = append(subs, sub)
	} else {
		vals := r.URL.Query()
		q := ownerQuery(r)
		for _, v := range vals["id"] {
			q.IDs = append(q.IDs, splitComma(v)...)
		}
		for _, v := range vals["status"] {
			for _, st := range splitComma(v) {
				if !linkbridge.SubscriptionStatus(st).Valid() {
					return linkbridge.Errorf(linkbridge.EINVALID, "status must be requested, active, error or off").At("status")
				}
				q.Statuses = append(q.Statuses, linkbridge.SubscriptionStatus(st))
			}
		}
		q.Limit = maxCount
		var err error
		if subs, err = s.Subscriptions.ListSubscriptions(r.Context(), q); err != nil {
			return err
		}
	}
	b := &rpb.Bundle{Id: &dpb.Id{Value: s.newID()}, Type: bundleType("searchset"), Total: &dpb.UnsignedInt{Value: uint32(len(subs))}}
	entries := make([]bundleEntry, 0, len(subs))
	for _, sub := range subs {
		n := fhirmap.Notification{Sub: sub, Type: linkbridge.NotificationQueryStatus, Status: sub.Status,
			EventsSinceStart: sub.EventsSinceStart, BundleID: s.newID(), StatusID: s.newID(), Timestamp: s.now()}
		if sub.Status == linkbridge.SubscriptionError {
			n.Error = sub.Error
		}
		raw, err := fhirmap.NotificationJSON(n)
		if err != nil {
			return err
		}
		// The status is the notification Bundle's first entry.
		status := fhirjson.EntryResources(raw)[0]
		st, err := s.canonical(status)
		if err != nil {
			return err
		}
		entries = append(entries, bundleEntry{raw: st, entry: &rpb.Bundle_Entry{
			FullUrl: &dpb.Uri{Value: "urn:uuid:" + n.StatusID},
			Search:  &rpb.Bundle_Entry_Search{Mode: searchMode("match")},
		}})
	}
	return s.writeBundle(w, b, entries)
}

func searchMode(mode string) *rpb.Bundle_Entry_Search_ModeCode {
	sm := &rpb.Bundle_Entry_Search_ModeCode{}
	fhirmap.SetCode(sm, mode)
	return sm
}

// maxEventsPage bounds the events one $events answer carries.
const maxEventsPage = 100

// handleSubscriptionEvents answers GET /fhir/Subscription/{id}/$events
// (eventsSinceNumber, eventsUntilNumber, content): a notification Bundle of
// type query-event replaying the recorded events in the range (at most
// 100), in the subscription's content or a lower one asked for. A
// full-resource replay carries each focus version the caller may still
// read.
func (s *Server) handleSubscriptionEvents(w http.ResponseWriter, r *http.Request) error {
	sub, err := s.ownSubscription(r, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	vals := r.URL.Query()
	num := func(name string, def int64) (int64, error) {
		v := vals.Get(name)
		if v == "" {
			return def, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return 0, linkbridge.Errorf(linkbridge.EINVALID, "%s must be an event number (1 or more)", name).At(name)
		}
		return n, nil
	}
	since, err := num("eventsSinceNumber", 1)
	if err != nil {
		return err
	}
	until, err := num("eventsUntilNumber", 0)
	if err != nil {
		return err
	}
	view := *sub
	if c := vals.Get("content"); c != "" {
		want := linkbridge.SubscriptionContent(c)
		order := []linkbridge.SubscriptionContent{linkbridge.ContentEmpty, linkbridge.ContentIDOnly, linkbridge.ContentFullResource}
		if !want.Valid() {
			return linkbridge.Errorf(linkbridge.EINVALID, "content must be empty, id-only or full-resource").At("content")
		}
		if slices.Index(order, want) <= slices.Index(order, sub.Content) {
			view.Content = want // a hint; never more than the subscription's
		}
	}
	evs, err := s.Subscriptions.SubscriptionEvents(r.Context(), sub.ID, since, until, maxEventsPage)
	if err != nil {
		return err
	}
	n := fhirmap.Notification{Sub: &view, Type: linkbridge.NotificationQueryEvent, Status: sub.Status,
		EventsSinceStart: sub.EventsSinceStart, BundleID: s.newID(), StatusID: s.newID(), Timestamp: s.now()}
	for _, ev := range evs {
		ne := fhirmap.NotificationEvent{Event: ev}
		if view.Content == linkbridge.ContentFullResource {
			// Read as the caller: a resource it may no longer read is
			// left out (its entry keeps its request and response).
			res, err := s.Store.ReadResourceVersion(r.Context(), ev.FocusType, ev.FocusID, ev.FocusVersion)
			if err == nil {
				ne.Resource = res
			} else if linkbridge.ErrorCode(err) != linkbridge.ENOTFOUND {
				return err
			}
		}
		n.Events = append(n.Events, ne)
	}
	raw, err := fhirmap.NotificationJSON(n)
	if err != nil {
		return err
	}
	body, err := s.canonical(raw)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", ContentTypeFHIR)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return nil
}

// topicJSON renders a topic's Basic resource through jsonformat.
func (s *Server) topicJSON(t fhirmap.Topic) ([]byte, error) {
	raw, err := fhirmap.TopicBasicJSON(t)
	if err != nil {
		return nil, err
	}
	return s.canonical(raw)
}

// handleTopicRead answers GET /fhir/Basic/{id}: a subscription topic as
// the backport IG represents one in R4. linkbridge holds no other Basic.
func (s *Server) handleTopicRead(w http.ResponseWriter, r *http.Request) error {
	t, ok := s.Systems.TopicByID(mux.Vars(r)["id"])
	if !ok {
		return linkbridge.Errorf(linkbridge.ENOTFOUND, "Basic/%s not found", mux.Vars(r)["id"])
	}
	body, err := s.topicJSON(t)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", ContentTypeFHIR)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return nil
}

// handleTopicSearch answers GET /fhir/Basic (code=SubscriptionTopic, url=,
// _id=): the subscription topics.
func (s *Server) handleTopicSearch(w http.ResponseWriter, r *http.Request) error {
	vals := r.URL.Query()
	for k := range vals {
		if !slices.Contains([]string{"code", "url", "_id", "_format", "_pretty"}, k) && !lenient(r) {
			return linkbridge.Errorf(linkbridge.EINVALID, "unsupported search parameter %s (Basic takes code, url and _id)", k).At(k)
		}
	}
	base := s.baseURL(r)
	var entries []bundleEntry
	for _, t := range s.Systems.Topics() {
		if c := vals.Get("code"); c != "" && c != "SubscriptionTopic" && c != "http://hl7.org/fhir/fhir-types|SubscriptionTopic" {
			continue
		}
		if u := vals.Get("url"); u != "" && u != t.URL {
			continue
		}
		if id := vals.Get("_id"); id != "" && !slices.Contains(splitComma(id), t.ID) {
			continue
		}
		body, err := s.topicJSON(t)
		if err != nil {
			return err
		}
		entries = append(entries, searchEntry(base, &linkbridge.Resource{Type: "Basic", ID: t.ID, Body: body}, "match"))
	}
	b := &rpb.Bundle{Id: &dpb.Id{Value: s.newID()}, Type: bundleType("searchset"), Total: &dpb.UnsignedInt{Value: uint32(len(entries))}}
	return s.writeBundle(w, b, entries)
}
