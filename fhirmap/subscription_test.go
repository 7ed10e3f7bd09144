package fhirmap_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/fhirmap"
)

func TestParseFilterCriteria(t *testing.T) {
	sys := fhirmap.Systems{}
	status, _ := sys.TopicByID(fhirmap.TopicReferralStatus)
	record, _ := sys.TopicByID(fhirmap.TopicCaseRecord)
	for _, tt := range []struct {
		name     string
		topic    fhirmap.Topic
		criteria string
		want     []linkbridge.SubscriptionFilter
		wantErr  bool
	}{
		{name: "TypedToken", topic: status, criteria: "Task?status=accepted,completed",
			want: []linkbridge.SubscriptionFilter{{ResourceType: "Task", Name: "status", Values: []string{"accepted", "completed"}}}},
		{name: "ReferenceBareID", topic: status, criteria: "Task?patient=123&requester=Organization/A81001",
			want: []linkbridge.SubscriptionFilter{
				{ResourceType: "Task", Name: "patient", Values: []string{"Patient/123"}},
				{ResourceType: "Task", Name: "requester", Values: []string{"Organization/A81001"}},
			}},
		{name: "UntypedCommonParameter", topic: record, criteria: "patient=Patient/9",
			want: []linkbridge.SubscriptionFilter{{Name: "patient", Values: []string{"Patient/9"}}}},
		{name: "ID", topic: status, criteria: "_id=t1",
			want: []linkbridge.SubscriptionFilter{{Name: "_id", Values: []string{"t1"}}}},
		{name: "ErrOtherType", topic: status, criteria: "Observation?code=x", wantErr: true},
		{name: "ErrUnknownParameter", topic: status, criteria: "Task?business-status=x", wantErr: true},
		{name: "ErrModifier", topic: status, criteria: "Task?status:not=draft", wantErr: true},
		{name: "ErrChain", topic: status, criteria: "Task?patient.identifier=x", wantErr: true},
		{name: "ErrEmptyValue", topic: status, criteria: "Task?status=", wantErr: true},
		{name: "ErrNoParameter", topic: status, criteria: "Task?", wantErr: true},
		{name: "ErrBadEscape", topic: status, criteria: "Task?status=%zz", wantErr: true},
		{name: "ErrNotOnEveryType", topic: record, criteria: "code=x", wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fhirmap.ParseFilterCriteria(tt.topic, tt.criteria)
			if tt.wantErr {
				if linkbridge.ErrorCode(err) != linkbridge.EUNPROCESSABLE {
					t.Fatalf("ParseFilterCriteria(%q) = %v, %v; want EUNPROCESSABLE", tt.criteria, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseFilterCriteria(%q) returned unexpected error: %v", tt.criteria, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("ParseFilterCriteria(%q) mismatch (-want +got):\n%s", tt.criteria, diff)
			}
		})
	}
}

// FuzzParseFilterCriteria: filter criteria are a subscriber's input. The
// parser never panics, and what it accepts is a filter that names a
// parameter and values, each value non-empty.
func FuzzParseFilterCriteria(f *testing.F) {
	for _, s := range []string{"Task?status=accepted", "Task?patient=1,2&owner=Organization/X", "patient=Patient/1", "Goal?lifecycle-status=active",
		"Task?status:not=draft", "?", "", "Task?%zz", "Observation?code=http://loinc.org|1234"} {
		f.Add(s)
	}
	topics := fhirmap.Systems{}.Topics()
	f.Fuzz(func(t *testing.T, criteria string) {
		for _, topic := range topics {
			fs, err := fhirmap.ParseFilterCriteria(topic, criteria)
			if err != nil {
				if linkbridge.ErrorCode(err) != linkbridge.EUNPROCESSABLE {
					t.Fatalf("error %v is not EUNPROCESSABLE", err)
				}
				continue
			}
			if len(fs) == 0 {
				t.Fatalf("%q accepted without a filter", criteria)
			}
			for _, f := range fs {
				if f.Name == "" || len(f.Values) == 0 {
					t.Fatalf("%q gave an empty filter %+v", criteria, f)
				}
				for _, v := range f.Values {
					if v == "" {
						t.Fatalf("%q gave an empty value", criteria)
					}
				}
			}
		}
	})
}
