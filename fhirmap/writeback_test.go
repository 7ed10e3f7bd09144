package fhirmap_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/fhirmap"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	provpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/provenance_go_proto"
	taskpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
	"google.golang.org/protobuf/proto"
)

// TestWritebackKeyParam: the conditional-update parameter is read from each
// type's descriptor: identifier where the type has a repeating identifier
// element, _tag (meta.tag) otherwise.
func TestWritebackKeyParam(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ typ, want string }{
		{"Task", "identifier"},
		{"Goal", "identifier"},
		{"CarePlan", "identifier"},
		{"Encounter", "identifier"},
		{"Observation", "identifier"},
		{"Procedure", "identifier"},
		{"ServiceRequest", "identifier"},
		{"Patient", "identifier"},
		{"Provenance", "_tag"},   // no identifier element
		{"Bundle", "_tag"},       // a single identifier, not a list
		{"Parameters", "_tag"},   // none
		{"NotAResource", "_tag"}, // _tag applies to every resource
		{"AuditEvent", "_tag"},   // none in R4
		{"DocumentReference", "identifier"},
	} {
		if got := fhirmap.WritebackKeyParam(tc.typ); got != tc.want {
			t.Errorf("WritebackKeyParam(%s) = %q, want %q", tc.typ, got, tc.want)
		}
	}
	if got := (fhirmap.Systems{}).WritebackToken("Provenance", "r1-v2"); got != "https://linkbridge.example.org/Id/writeback|Provenance/r1-v2" {
		t.Errorf("WritebackToken = %q", got)
	}
}

// TestSetWritebackKey: a type with identifiers gets a writeback identifier,
// a Provenance a meta.tag beside the tags it had; applying it twice adds
// nothing.
func TestSetWritebackKey(t *testing.T) {
	t.Parallel()
	other := &dpb.Coding{System: &dpb.Uri{Value: "http://example.org/tags"}, Code: &dpb.Code{Value: "x"}}
	prov := &provpb.Provenance{Id: &dpb.Id{Value: "r1-v2"}, Meta: &dpb.Meta{Tag: []*dpb.Coding{other}}}
	fhirmap.Systems{}.SetWritebackKey(prov)
	fhirmap.Systems{}.SetWritebackKey(prov)
	want := []*dpb.Coding{other, {System: &dpb.Uri{Value: fhirmap.WritebackIdentifierSystem}, Code: &dpb.Code{Value: "Provenance/r1-v2"}}}
	if diff := cmp.Diff(want, prov.GetMeta().GetTag(), cmp.Comparer(proto.Equal)); diff != "" {
		t.Errorf("Provenance meta.tag (-want +got):\n%s", diff)
	}
	bare := &provpb.Provenance{Id: &dpb.Id{Value: "p"}}
	fhirmap.Systems{}.SetWritebackKey(bare)
	if tags := bare.GetMeta().GetTag(); len(tags) != 1 || tags[0].GetCode().GetValue() != "Provenance/p" {
		t.Errorf("Provenance without meta: tags %v", tags)
	}
	task := &taskpb.Task{Id: &dpb.Id{Value: "t1"}}
	fhirmap.Systems{}.SetWritebackKey(task)
	fhirmap.Systems{}.SetWritebackKey(task)
	if ids := task.GetIdentifier(); len(ids) != 1 || ids[0].GetSystem().GetValue() != fhirmap.WritebackIdentifierSystem || ids[0].GetValue().GetValue() != "Task/t1" {
		t.Errorf("Task identifiers %v, want one writeback identifier", ids)
	}
	if task.GetMeta() != nil {
		t.Errorf("Task meta = %v, want none (keyed by identifier)", task.GetMeta())
	}
	// ForGPRecord drops the stored meta but keeps the key of a tag-keyed type.
	stored := &provpb.Provenance{Id: &dpb.Id{Value: "r1-v3"}, Meta: &dpb.Meta{VersionId: &dpb.Id{Value: "4"}, Tag: []*dpb.Coding{other}}}
	out := fhirmap.Systems{}.ForGPRecord(stored, &linkbridge.Referral{ID: "r1", PersonID: "p1"}, "9434765919", nil).(*provpb.Provenance)
	if m := out.GetMeta(); m.GetVersionId() != nil || len(m.GetTag()) != 1 || m.GetTag()[0].GetCode().GetValue() != "Provenance/r1-v3" {
		t.Errorf("ForGPRecord(Provenance).meta = %v, want only the write-back tag", m)
	}
}

// TestWriteBackProvenanceGolden renders the Provenance of a change through
// google/fhir and compares it with testdata/provenance/writeback.golden.json
// (-update rewrites it). Its write-back key is the meta.tag SetWritebackKey
// would add, so the relay and the conformance kit find it with _tag.
func TestWriteBackProvenanceGolden(t *testing.T) {
	t.Parallel()
	c := mustCodec(t)
	var cr linkbridge.CaseRecord
	if err := json.Unmarshal(mustReadFile(t, filepath.Join(caseViewDir, "full-consent.input.json")), &cr); err != nil {
		t.Fatal(err)
	}
	targets := []*linkbridge.Resource{{Type: "Task", ID: cr.Referral.TaskID, VersionID: 5}, {Type: "CarePlan", ID: fhirmap.CarePlanID(cr.Referral.ID), VersionID: 2}}
	prov := fhirmap.Systems{}.WriteBackProvenance(cr.Referral, 7, targets, "plan", linkbridge.ActorPerformer, time.Date(2027, 2, 2, 9, 0, 0, 0, time.UTC))
	body := mustRenderGenerated(t, c, fhirmap.Generated{Type: "Provenance", ID: fhirmap.ID(prov), Resource: prov})
	res := proto.Clone(prov)
	before := proto.Clone(res)
	fhirmap.Systems{}.SetWritebackKey(res)
	if !proto.Equal(before, res) {
		t.Errorf("WriteBackProvenance's key is not the one SetWritebackKey gives:\n%s", body)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		t.Fatal(err)
	}
	got := append(buf.Bytes(), '\n')
	path := filepath.Join("testdata", "provenance", "writeback.golden.json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run go test ./fhirmap -run TestWriteBackProvenanceGolden -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("WriteBackProvenance mismatch (-want +got); rerun with -update if the change is intended:\n%s", diff)
	}
}

// TestWriteBackProvenanceRecorded: Provenance.recorded keeps the precision
// it has always been written with: the change's time to the nanosecond
// with trailing zeros dropped, as google/fhir reads that (seconds, then
// milliseconds up to three digits, else microseconds, truncated).
func TestWriteBackProvenanceRecorded(t *testing.T) {
	t.Parallel()
	c := mustCodec(t)
	r := &linkbridge.Referral{ID: "r1", ServiceODS: "Y02662"}
	targets := []*linkbridge.Resource{{Type: "Task", ID: "t1", VersionID: 2}}
	at := time.Date(2027, 2, 2, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		ns   int
		want string
	}{
		{0, `"recorded":"2027-02-02T09:00:00Z"`},
		{100_000_000, `"recorded":"2027-02-02T09:00:00.100Z"`},
		{120_000_000, `"recorded":"2027-02-02T09:00:00.120Z"`},
		{123_400_000, `"recorded":"2027-02-02T09:00:00.123400Z"`},
		{123_456_789, `"recorded":"2027-02-02T09:00:00.123456Z"`},
		{1, `"recorded":"2027-02-02T09:00:00.000000Z"`},
	} {
		now := at.Add(time.Duration(tc.ns))
		p := fhirmap.Systems{}.WriteBackProvenance(r, 2, targets, "plan", linkbridge.ActorPerformer, now.In(time.FixedZone("BST", 3600)))
		body, err := c.Encode(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(body, []byte(tc.want)) || !bytes.Contains(body, []byte(`"occurredDateTime":"2027-02-02T09:00:00Z"`)) {
			t.Errorf("ns %d: %s, want %s and occurredDateTime to the second", tc.ns, body, tc.want)
		}
	}
}
