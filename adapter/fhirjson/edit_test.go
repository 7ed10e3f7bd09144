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
