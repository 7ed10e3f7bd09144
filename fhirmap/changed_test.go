package fhirmap_test

import (
	"slices"
	"testing"

	"github.com/linkbridge/linkbridge/fhirmap"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	taskpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
	"google.golang.org/protobuf/proto"
)

func TestChangedElements(t *testing.T) {
	t.Parallel()
	stored := &taskpb.Task{
		Id:          &dpb.Id{Value: "t1"},
		Description: &dpb.String{Value: "Refer to social prescribing"},
		ForValue:    fhirmap.NewRef("Patient", "p1"),
		Requester:   fhirmap.NewRef("Organization", "a"),
		Note:        []*dpb.Annotation{{Text: &dpb.Markdown{Value: "first"}}},
	}
	tests := []struct {
		name   string
		change func(t *taskpb.Task)
		ignore []string
		want   []string
	}{
		{"Same", func(*taskpb.Task) {}, nil, nil},
		{"Requester", func(t *taskpb.Task) { t.Requester = fhirmap.NewRef("Organization", "b") }, nil, []string{"requester"}},
		{"ForIsNamedFor", func(t *taskpb.Task) { t.ForValue = fhirmap.NewRef("Patient", "p2") }, nil, []string{"for"}},
		{"Dropped", func(t *taskpb.Task) { t.Description = nil }, nil, []string{"description"}},
		{"ListGrew", func(t *taskpb.Task) { t.Note = append(t.Note, &dpb.Annotation{Text: &dpb.Markdown{Value: "x"}}) }, nil, []string{"note"}},
		{"Ignored", func(t *taskpb.Task) { t.Id = &dpb.Id{Value: "t2"}; t.Note = nil }, []string{"id", "note"}, nil},
		{"Several", func(t *taskpb.Task) { t.Description = &dpb.String{Value: "x"}; t.Requester = nil }, nil, []string{"description", "requester"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sent := proto.Clone(stored).(*taskpb.Task)
			tc.change(sent)
			got := fhirmap.ChangedElements(stored, sent, tc.ignore...)
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("ChangedElements = %v, want %v", got, tc.want)
			}
		})
	}
}
