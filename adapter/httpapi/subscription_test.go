package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/httpapi"
	"github.com/linkbridge/linkbridge/fhirmap"
)

// hostPolicy allows https endpoints on one host (adapter/resthook.Policy
// is wired in cmd/ and tested in its package).
type hostPolicy string

func (h hostPolicy) CheckEndpoint(raw string) error {
	if !strings.HasPrefix(raw, "https://"+string(h)+"/") {
		return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "not allowed").At("Subscription.channel.endpoint")
	}
	return nil
}

// subscriptionBody is a backport Subscription to topic with an id-only
// rest-hook to endpoint and the given filter criteria.
func subscriptionBody(t *testing.T, topic, endpoint string, filters ...string) []byte {
	t.Helper()
	sub := map[string]any{
		"resourceType": "Subscription", "status": "requested", "reason": "test", "criteria": topic,
		"channel": map[string]any{
			"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json",
			"_payload": map[string]any{"extension": []any{map[string]any{"url": fhirmap.ExtPayloadContent, "valueCode": "id-only"}}},
			"header":   []string{"Authorization: Bearer secret-of-the-endpoint"},
		},
	}
	var crit []any
	for _, f := range filters {
		crit = append(crit, map[string]any{"url": fhirmap.ExtFilterCriteria, "valueString": f})
	}
	if crit != nil {
		sub["_criteria"] = map[string]any{"extension": crit}
	}
	return mustJSON(t, sub)
}

// subscriptionStatusOf reads a $status answer: the subscription's status and event
// count.
func subscriptionStatusOf(t *testing.T, b []byte) (string, string) {
	t.Helper()
	var bundle struct {
		Entry []struct {
			Resource struct {
				Parameter []struct {
					Name        string `json:"name"`
					ValueCode   string `json:"valueCode"`
					ValueString string `json:"valueString"`
				} `json:"parameter"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(b, &bundle); err != nil || len(bundle.Entry) != 1 {
		t.Fatalf("$status: %v %s", err, b)
	}
	var status, events string
	for _, p := range bundle.Entry[0].Resource.Parameter {
		switch p.Name {
		case "status":
			status = p.ValueCode
		case "events-since-subscription-start":
			events = p.ValueString
		}
	}
	return status, events
}

// TestSubscriptionScoping: a Subscription belongs to the organisation that
// created it (another's reads, searches and deletes find nothing), only
// allowed https endpoints are accepted (422 naming
// Subscription.channel.endpoint), and an event reaches an MDT viewer's
// subscription only for its practices' referrals, and a filtered one only
// when the filter matches.
func TestSubscriptionScoping(t *testing.T) {
	ss := newSecServer(t, nil, func(s *httpapi.Server) {
		s.SubscriptionEndpoints = hostPolicy("hooks.example.org")
	})
	topic := ss.API.Systems.Topics()[0].URL // referral status
	create := func(client, endpoint string, filters ...string) (int, string, []byte) {
		st, _, b := ss.call(client, http.MethodPost, "/fhir/Subscription", subscriptionBody(t, topic, endpoint, filters...), nil)
		var out struct {
			ID      string `json:"id"`
			Status  string `json:"status"`
			Channel struct {
				Header []string `json:"header"`
			} `json:"channel"`
		}
		_ = json.Unmarshal(b, &out)
		if st == http.StatusCreated && (out.Status != "requested" || len(out.Channel.Header) != 1 || strings.Contains(out.Channel.Header[0], "secret")) {
			t.Fatalf("created Subscription %s: want requested, the header's value redacted", b)
		}
		return st, out.ID, b
	}
	for _, tt := range []struct{ name, endpoint string }{
		{"HTTP", "http://hooks.example.org/in"},
		{"NotAllowed", "https://evil.example.org/in"},
		{"Loopback", "https://127.0.0.1/in"},
		{"Private", "https://10.0.0.8/in"},
		{"UserInfo", "https://user:pw@hooks.example.org/in"},
	} {
		t.Run("Refused"+tt.name, func(t *testing.T) {
			st, _, b := create("mdt-own", tt.endpoint)
			if st != http.StatusUnprocessableEntity || !strings.Contains(string(b), "Subscription.channel.endpoint") {
				t.Fatalf("endpoint %s: %d %s; want 422 naming Subscription.channel.endpoint", tt.endpoint, st, b)
			}
		})
	}
	if st, _, b := ss.call("mdt-own", http.MethodPost, "/fhir/Subscription", subscriptionBody(t, "https://example.org/no-such-topic", "https://hooks.example.org/a"), nil); st != http.StatusUnprocessableEntity || !strings.Contains(string(b), "Subscription.criteria") {
		t.Fatalf("unknown topic: %d %s; want 422 naming Subscription.criteria", st, b)
	}
	if st, _, b := ss.call("mdt-own", http.MethodPost, "/fhir/Subscription", subscriptionBody(t, topic, "https://hooks.example.org/a", "Task?status:not=draft"), nil); st != http.StatusUnprocessableEntity {
		t.Fatalf("filter with a modifier: %d %s; want 422", st, b)
	}
	if st, _, b := ss.call("admin", http.MethodPost, "/fhir/Subscription", subscriptionBody(t, topic, "https://hooks.example.org/a"), nil); st != http.StatusForbidden {
		t.Fatalf("administrator: %d %s; want 403", st, b)
	}

	st, mine, b := create("mdt-own", "https://hooks.example.org/mdt")
	if st != http.StatusCreated {
		t.Fatalf("create as mdt-own: %d %s", st, b)
	}
	_, theirs, _ := create("mdt-other", "https://hooks.example.org/other")
	_, accepted, _ := create("gp-own", "https://hooks.example.org/gp", "Task?status=accepted")

	// Another organisation's subscription is not found.
	if st, _, _ := ss.call("mdt-other", http.MethodGet, "/fhir/Subscription/"+mine, nil, nil); st != http.StatusNotFound {
		t.Fatalf("mdt-other reads mdt-own's subscription: %d, want 404", st)
	}
	if st, _, _ := ss.call("mdt-other", http.MethodDelete, "/fhir/Subscription/"+mine, nil, nil); st != http.StatusNotFound {
		t.Fatalf("mdt-other deletes mdt-own's subscription: %d, want 404", st)
	}
	if st, _, b := ss.call("mdt-own", http.MethodGet, "/fhir/Subscription?status=requested", nil, nil); st != 200 || total(t, b) != 1 {
		t.Fatalf("mdt-own's search: %d, total %d; want its one subscription", st, total(t, b))
	}

	// A referral of A81001: the MDT of A81001 gets the event, the MDT of
	// B82002 does not, and the practice's filter on accepted does not
	// match a requested Task.
	if st, _, b := ss.call("gp-own", http.MethodPost, "/fhir", mustRead(t, fixReferralTxn), nil); st != http.StatusOK {
		t.Fatalf("intake: %d %s", st, b)
	}
	for _, c := range []struct{ client, id, events string }{{"mdt-own", mine, "1"}, {"mdt-other", theirs, "0"}, {"gp-own", accepted, "0"}} {
		st, _, b := ss.call(c.client, http.MethodGet, "/fhir/Subscription/"+c.id+"/$status", nil, nil)
		if st != http.StatusOK {
			t.Fatalf("%s $status: %d %s", c.client, st, b)
		}
		if status, events := subscriptionStatusOf(t, b); status != "requested" || events != c.events {
			t.Errorf("%s $status = %s with %s events, want requested with %s", c.client, status, events, c.events)
		}
	}
	st, _, b = ss.call("mdt-own", http.MethodGet, "/fhir/Subscription/"+mine+"/$events", nil, nil)
	if st != http.StatusOK || !strings.Contains(string(b), `"query-event"`) || !strings.Contains(string(b), "/Task/") {
		t.Fatalf("$events: %d %s; want a query-event Bundle naming the Task", st, b)
	}
	if st, _, b := ss.call("mdt-own", http.MethodGet, "/fhir/Basic/referral-status", nil, nil); st != http.StatusOK || !strings.Contains(string(b), topic) {
		t.Fatalf("topic: %d %s", st, b)
	}
	if st, _, _ := ss.call("mdt-own", http.MethodDelete, "/fhir/Subscription/"+mine, nil, nil); st != http.StatusOK {
		t.Fatalf("mdt-own deletes its subscription: %d", st)
	}
	if st, _, _ := ss.call("mdt-own", http.MethodGet, "/fhir/Subscription/"+mine, nil, nil); st != http.StatusNotFound {
		t.Fatalf("deleted subscription read: %d, want 404", st)
	}
	st, _, b = ss.call("", http.MethodGet, "/fhir/metadata", nil, nil)
	if st != 200 || !strings.Contains(string(b), fhirmap.ProfileBackportSubscription) || !strings.Contains(string(b), fhirmap.ExtTopicCanonical) {
		t.Fatalf("CapabilityStatement lacks the backport Subscription profile or topics: %s", b)
	}
}
