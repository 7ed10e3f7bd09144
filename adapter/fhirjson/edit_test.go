package fhirjson_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/fhirmap"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	taskpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
	"google.golang.org/protobuf/proto"
)

// TestSetVersionMeta: restamping a rendered resource's versionId and
// lastUpdated gives exactly what Encode renders after SetMeta, for any
// instant (whole seconds, sub-microsecond, another zone), and leaves its
// input alone.
func TestSetVersionMeta(t *testing.T) {
	c := mustNew(t)
	r := &linkbridge.Referral{ID: "sr1", PersonID: "p1", TaskID: "t1", Status: linkbridge.TaskInProgress, ReferrerODS: "A81001", ServiceODS: "Y02662",
		AuthoredOn: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	task := fhirmap.NewReferralTask(r, nil, r.AuthoredOn)
	fhirmap.SetID(task, r.TaskID)
	fhirmap.SetMeta(task, 3, time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC))
	stored, err := c.Encode(task)
	if err != nil {
		t.Fatal(err)
	}
	keep := bytes.Clone(stored)
	for _, at := range []time.Time{
		time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 22, 9, 0, 0, 123456789, time.UTC),
		time.Date(2026, 11, 22, 9, 0, 0, 100000000, time.FixedZone("BST", 3600)),
	} {
		for _, v := range []int{4, 10, 12345} {
			got, err := fhirjson.SetVersionMeta(stored, v, at)
			if err != nil {
				t.Fatal(err)
			}
			next := proto.Clone(task)
			fhirmap.SetMeta(next, v, at)
			want, err := c.Encode(next)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("SetVersionMeta(%d, %s) =\n%s\nwant\n%s", v, at, got, want)
			}
		}
	}
	if !bytes.Equal(stored, keep) {
		t.Errorf("SetVersionMeta changed its input")
	}
	for _, bad := range []string{`{"resourceType":"Task"}`, `{"resourceType":"Task","meta":{"versionId":"1"}}`, `{"resourceType":`} {
		if _, err := fhirjson.SetVersionMeta([]byte(bad), 2, time.Now()); err == nil {
			t.Errorf("SetVersionMeta(%s) = nil error, want one", bad)
		}
	}
}

// TestSetReferenceByIdentifier: setting the GP's Patient on the JSON gives
// the resource fhirmap.PointPatientAt gives on its proto: every logical
// reference by that NHS number, outside contained resources, gets the
// literal reference; other references are left alone.
func TestSetReferenceByIdentifier(t *testing.T) {
	c := mustNew(t)
	const nhs, sys = "9434765919", linkbridge.NHSNumberSystem
	body := []byte(`{"resourceType":"Task","id":"t1","status":"accepted","intent":"order",` +
		`"contained":[{"resourceType":"Patient","id":"c1","link":[{"other":{"type":"Patient","identifier":{"system":"` + sys + `","value":"` + nhs + `"}},"type":"seealso"}]}],` +
		`"extension":[{"url":"https://example.org/x","valueReference":{"identifier":{"system":"` + sys + `","value":"` + nhs + `"}}}],` +
		`"for":{"type":"Patient","identifier":{"system":"` + sys + `","value":"` + nhs + `"}},` +
		`"requester":{"type":"Patient","identifier":{"system":"` + sys + `","value":"9990000018"}},` +
		`"owner":{"reference":"Patient/old","identifier":{"system":"` + sys + `","value":"` + nhs + `"}},` +
		`"focus":{"reference":"#c1"}}`)
	in, err := c.DecodeResource(body)
	if err != nil {
		t.Fatal(err)
	}
	keep := bytes.Clone(body)
	got, n, err := fhirjson.SetReferenceByIdentifier(body, sys, nhs, "Patient/gp-7")
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("set %d references, want 3 (extension, for, owner)", n)
	}
	if !bytes.Equal(body, keep) {
		t.Errorf("SetReferenceByIdentifier changed its input")
	}
	out, err := c.DecodeResource(got)
	if err != nil {
		t.Fatalf("edited resource does not parse: %v\n%s", err, got)
	}
	fhirmap.PointPatientAt(in, nhs, "gp-7")
	if !proto.Equal(in, out) {
		t.Errorf("JSON edit differs from PointPatientAt:\n%s", got)
	}

	// No match: the same bytes back, no walk needed.
	same, n, err := fhirjson.SetReferenceByIdentifier(body, sys, "9990316775", "Patient/gp-7")
	if err != nil || n != 0 || &same[0] != &body[0] {
		t.Errorf("no match: n=%d err=%v, want body itself", n, err)
	}
	for _, bad := range []string{`[1]`, `{"resourceType":`} {
		if _, _, err := fhirjson.SetReferenceByIdentifier([]byte(bad), sys, nhs, "Patient/x"); err == nil {
			t.Errorf("SetReferenceByIdentifier(%s) = nil error, want one", bad)
		}
	}
}

func TestHasMetaTag(t *testing.T) {
	const sys = "https://linkbridge.example.org/Id/writeback"
	for _, tc := range []struct {
		body string
		want bool
	}{
		{`{"resourceType":"Provenance","meta":{"tag":[{"system":"http://x"},{"system":"` + sys + `","code":"Provenance/p"}]}}`, true},
		{`{"resourceType":"Provenance","meta":{"tag":[{"system":"http://x"}]},"target":[{"identifier":{"system":"` + sys + `"}}]}`, false},
		{`{"resourceType":"Provenance"}`, false},
		{`not json`, false},
	} {
		if got := fhirjson.HasMetaTag([]byte(tc.body), sys); got != tc.want {
			t.Errorf("HasMetaTag(%s) = %v, want %v", tc.body, got, tc.want)
		}
	}
}

// TestValidateEncoded: validating a resource with the rendering the caller
// already has finds what Validate finds: google/fhir's issues on the proto,
// the JSON rules on the bytes.
func TestValidateEncoded(t *testing.T) {
	c := mustNew(t)
	r := &linkbridge.Referral{ID: "sr1", PersonID: "p1", Status: linkbridge.TaskRequested, ReferrerODS: "A81001", ServiceODS: "Y02662",
		AuthoredOn: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	task := fhirmap.NewReferralTask(r, nil, r.AuthoredOn)
	fhirmap.SetID(task, "t1")
	b, err := c.Encode(task)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ValidateEncoded(task, b); err != nil {
		t.Errorf("valid Task: %v", err)
	}
	noIntent := proto.Clone(task).(*taskpb.Task)
	noIntent.Intent = nil
	nb, _ := c.Encode(noIntent)
	var ire *fhirjson.InvalidResourceError
	if err := c.ValidateEncoded(noIntent, nb); !errors.As(err, &ire) {
		t.Errorf("Task without intent: %v, want an InvalidResourceError", err)
	}
	empty := proto.Clone(task).(*taskpb.Task)
	empty.Owner.Display = &dpb.String{}
	eb, _ := c.Encode(empty)
	if err := c.ValidateEncoded(empty, eb); linkbridge.ErrorCode(err) != linkbridge.EINVALID || c.Validate(empty) == nil {
		t.Errorf("Task with an empty string: ValidateEncoded %v, Validate %v; want both EINVALID", err, c.Validate(empty))
	}
}
