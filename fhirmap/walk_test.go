package fhirmap

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	patpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/patient_go_proto"
	taskpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// TestWalkRefs: the reference walk visits every Reference outside
// contained resources, not the assigner inside one, with its element
// path; fn's error ends the walk.
func TestWalkRefs(t *testing.T) {
	t.Parallel()
	pat, err := anypb.New(Wrap(&patpb.Patient{Id: &dpb.Id{Value: "p"}, GeneralPractitioner: []*dpb.Reference{NewRef("Organization", "c")}}))
	if err != nil {
		t.Fatal(err)
	}
	assigned := NewRef("Organization", "o1")
	assigned.Identifier = &dpb.Identifier{Value: &dpb.String{Value: "x"}, Assigner: NewRef("Organization", "assigner")}
	task := &taskpb.Task{
		Contained: []*anypb.Any{pat},
		Focus:     NewRef("ServiceRequest", "sr"),
		Owner:     assigned,
		BasedOn:   []*dpb.Reference{NewRef("ServiceRequest", "a"), NewRef("CarePlan", "b")},
		Input: []*taskpb.Task_Parameter{{Value: &taskpb.Task_Parameter_ValueX{
			Choice: &taskpb.Task_Parameter_ValueX_Reference{Reference: NewRef("Patient", "p2")}}}},
	}
	var got []string
	err = walkRefs(task.ProtoReflect(), "Task", func(ref *dpb.Reference, path func() string) error {
		typ, id := RefTarget(ref)
		got = append(got, path()+" "+typ+"/"+id)
		return nil
	})
	if err != nil {
		t.Fatalf("walkRefs: %v", err)
	}
	want := []string{
		"Task.basedOn[0] ServiceRequest/a", "Task.basedOn[1] CarePlan/b",
		"Task.focus ServiceRequest/sr",
		"Task.owner Organization/o1",
		"Task.input[0].value.reference Patient/p2",
	}
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("walkRefs visited (-want +got):\n%s", diff)
	}

	stop := errors.New("stop")
	n := 0
	err = walkRefs(task.ProtoReflect(), "Task", func(*dpb.Reference, func() string) error {
		n++
		return stop
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("walkRefs after an error: err %v after %d references, want stop after 1", err, n)
	}
}

// TestWalkVisitsEveryMessage: walk visits messages inside references too
// (an ODS identifier on a reference is normalised) and builds the path of
// the message it is at.
func TestWalkVisitsEveryMessage(t *testing.T) {
	t.Parallel()
	owner := &dpb.Reference{Identifier: &dpb.Identifier{System: &dpb.Uri{Value: "s"}, Value: &dpb.String{Value: "v"}}}
	task := &taskpb.Task{Owner: owner, Note: []*dpb.Annotation{{}, {Text: &dpb.Markdown{Value: "n"}}}}
	var ids, notes []string
	err := walk(task.ProtoReflect(), "Task", func(m protoreflect.Message, path func() string) error {
		switch m.Interface().(type) {
		case *dpb.Identifier:
			ids = append(ids, path())
		case *dpb.Markdown:
			notes = append(notes, path())
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	if diff := cmp.Diff([]string{"Task.owner.identifier"}, ids); diff != "" {
		t.Errorf("walk identifiers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Task.note[1].text"}, notes); diff != "" {
		t.Errorf("walk notes (-want +got):\n%s", diff)
	}
}
