package fhirmap_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/fhirmap"

	taskpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
)

const ownBase = "https://sp.example-ics.nhs.uk/linkbridge"

func mustSystems(t *testing.T, base string) fhirmap.Systems {
	t.Helper()
	s, err := fhirmap.NewSystems(base)
	if err != nil {
		t.Fatalf("NewSystems(%q): %v", base, err)
	}
	return s
}

// TestNewSystems: an absolute http(s) URL is a base (a trailing slash
// dropped; the default's own spelling is the zero value); anything else
// is refused with EINVALID.
func TestNewSystems(t *testing.T) {
	for _, tt := range []struct {
		base, want string
		zero       bool
	}{
		{"", fhirmap.DefaultSystemBase, true},
		{fhirmap.DefaultSystemBase, fhirmap.DefaultSystemBase, true},
		{fhirmap.DefaultSystemBase + "/", fhirmap.DefaultSystemBase, true},
		{ownBase, ownBase, false},
		{ownBase + "/", ownBase, false},
		{"http://lb.example", "http://lb.example", false},
	} {
		s := mustSystems(t, tt.base)
		if s.Base() != tt.want || (s == fhirmap.Systems{}) != tt.zero || s.IsDefault() != tt.zero {
			t.Errorf("NewSystems(%q) = %s (zero %v); want %s (zero %v)", tt.base, s, s == fhirmap.Systems{}, tt.want, tt.zero)
		}
	}
	for _, bad := range []string{"sp.example-ics.nhs.uk/linkbridge", "urn:oid:1.2.3", "ftp://x.example/a", "https://", "https://x.example/a?b=c",
		"https://x.example/a#f", "https://user@x.example/a", "https://x.example/a b", "https://x.example/a|b", "/linkbridge"} {
		if _, err := fhirmap.NewSystems(bad); linkbridge.ErrorCode(err) != linkbridge.EINVALID {
			t.Errorf("NewSystems(%q) error = %v; want EINVALID", bad, err)
		}
	}
}

// TestSystemsDefault: the zero Systems are the package's constants, which
// are the URIs every deployment wrote before bases were configurable, and
// every URI sits under the base.
func TestSystemsDefault(t *testing.T) {
	var d fhirmap.Systems
	for got, want := range map[string]string{
		d.Writeback():               fhirmap.WritebackIdentifierSystem,
		d.Client():                  fhirmap.ClientIDSystem,
		d.LinkWorker():              fhirmap.LinkWorkerSystem,
		d.ONS4():                    fhirmap.ONS4CodeSystem,
		d.Outcome():                 fhirmap.OutcomeCodeSystem,
		d.BusinessStatus():          fhirmap.BusinessStatusSystem,
		d.ExtTimepoint():            fhirmap.ExtTimepoint,
		d.ExtGoalImportance():       fhirmap.ExtGoalImportance,
		d.ExtGoalConfidence():       fhirmap.ExtGoalConfidence,
		d.ExtOnwardReferralStatus(): fhirmap.ExtOnwardReferralStatus,
	} {
		if got != want {
			t.Errorf("default system %s, want %s", got, want)
		}
	}
	// The write-back key of existing deployments: never to change.
	if d.Writeback() != "https://linkbridge.example.org/Id/writeback" {
		t.Fatalf("default write-back system = %s", d.Writeback())
	}
	own := mustSystems(t, ownBase)
	for i, u := range own.All() {
		if !strings.HasPrefix(u.URI, ownBase+"/") {
			t.Errorf("%s is not under %s", u.URI, ownBase)
		}
		if def := d.All()[i].URI; strings.TrimPrefix(def, fhirmap.DefaultSystemBase) != strings.TrimPrefix(u.URI, ownBase) {
			t.Errorf("%s and %s differ in more than the base", def, u.URI)
		}
	}
}

// TestSystemsDocumented: docs/identifiers.md lists every URI linkbridge
// mints under the base, and the default base.
func TestSystemsDocumented(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "identifiers.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs := string(b)
	for _, u := range (fhirmap.Systems{}).All() {
		path := strings.TrimPrefix(u.URI, fhirmap.DefaultSystemBase)
		if !strings.Contains(docs, "`{base}"+path+"`") {
			t.Errorf("docs/identifiers.md does not list `{base}%s` (%s)", path, u.Kind)
		}
	}
	for _, want := range []string{"`" + fhirmap.DefaultSystemBase + "`", "`" + fhirmap.SDSUserIDSystem + "`"} {
		if !strings.Contains(docs, want) {
			t.Errorf("docs/identifiers.md does not name %s", want)
		}
	}
}

// TestCaseViewSystemBase: every golden input rendered under a
// deployment's own base is the default rendering with the base replaced —
// every URI linkbridge mints moves, nothing else changes — and holds no
// URI under the default base.
func TestCaseViewSystemBase(t *testing.T) {
	t.Parallel()
	c := mustCodec(t)
	inputs, err := filepath.Glob(filepath.Join(caseViewDir, "*.input.json"))
	if err != nil {
		t.Fatal(err)
	}
	own := mustSystems(t, ownBase)
	for _, in := range inputs {
		def, mine := renderCaseWith(t, c, in, fhirmap.Systems{}), renderCaseWith(t, c, in, own)
		if len(def.view) != len(mine.view) {
			t.Fatalf("%s: %d resources under the default base, %d under %s", in, len(def.view), len(mine.view), ownBase)
		}
		pairs := [][2][]byte{{def.task, mine.task}}
		for _, g := range def.view {
			pairs = append(pairs, [2][]byte{def.bodies[g.Reference()], mine.bodies[g.Reference()]})
		}
		for _, p := range pairs {
			want := strings.ReplaceAll(string(p[0]), fhirmap.DefaultSystemBase+"/", ownBase+"/")
			if diff := cmp.Diff(want, string(p[1])); diff != "" {
				t.Errorf("%s under %s (-want +got):\n%s", in, ownBase, diff)
			}
			if strings.Contains(string(p[1]), fhirmap.DefaultSystemBase) {
				t.Errorf("%s under %s holds the default base:\n%s", in, ownBase, p[1])
			}
		}
	}
}

// TestLinkWorkerBySDSUserID: a link worker with an SDS user id is named by
// it (https://fhir.nhs.uk/Id/sds-user-id) wherever the view names them —
// the coded episode's performer, the plan's author, the Task's owner, the
// Provenance's author — and one without by the deployment's link-worker
// system.
func TestLinkWorkerBySDSUserID(t *testing.T) {
	t.Parallel()
	c := mustCodec(t)
	own := mustSystems(t, ownBase)
	rc := renderCaseWith(t, c, filepath.Join(caseViewDir, "own-base.input.json"), own)
	ident := func(body []byte, path ...any) (string, string) {
		id, _ := get(doc(t, body), path...).(jsonDoc)
		s, _ := id["system"].(string)
		v, _ := id["value"].(string)
		return s, v
	}
	r := rc.cr.Referral
	for _, tt := range []struct {
		what          string
		body          []byte
		path          []any
		system, value string
	}{
		{"CarePlan.author (holder, SDS user id)", rc.bodies["CarePlan/"+fhirmap.CarePlanID(r.ID)], []any{"author", "identifier"}, fhirmap.SDSUserIDSystem, "555050304199"},
		{"Task.owner (holder, SDS user id)", rc.task, []any{"owner", "identifier"}, fhirmap.SDSUserIDSystem, "555050304199"},
		{"Procedure.performer (agreed by, no SDS user id)", rc.bodies["Procedure/"+fhirmap.AcceptanceID(r.ID)], []any{"performer", 0, "actor", "identifier"}, own.LinkWorker(), "lw-0007"},
	} {
		if s, v := ident(tt.body, tt.path...); s != tt.system || v != tt.value {
			t.Errorf("%s = %s|%s, want %s|%s", tt.what, s, v, tt.system, tt.value)
		}
	}
	prov := own.WriteBackProvenance(r, r.Version, nil, "plan", linkbridge.ActorPerformer, time.Date(2027, 2, 2, 9, 0, 0, 0, time.UTC))
	if id := prov.GetAgent()[0].GetWho().GetIdentifier(); id.GetSystem().GetValue() != fhirmap.SDSUserIDSystem || id.GetValue().GetValue() != "555050304199" {
		t.Errorf("Provenance author = %v, want the SDS user id", id)
	}
	if got := prov.GetMeta().GetTag()[0].GetSystem().GetValue(); got != own.Writeback() {
		t.Errorf("Provenance write-back tag system = %s, want %s", got, own.Writeback())
	}
	if !own.IsLinkWorkerSystem(fhirmap.SDSUserIDSystem) || !own.IsLinkWorkerSystem(own.LinkWorker()) || own.IsLinkWorkerSystem(fhirmap.LinkWorkerSystem) {
		t.Error("IsLinkWorkerSystem: want the SDS user id system and the deployment's own link-worker system only")
	}
}

// TestWritebackKeyUnderBase: the write-back key and its search token are
// in the deployment's write-back system, and a resource keyed under
// another base gets the deployment's key beside it.
func TestWritebackKeyUnderBase(t *testing.T) {
	own := mustSystems(t, ownBase)
	if got, want := own.WritebackToken("Goal", "g1"), ownBase+"/Id/writeback|Goal/g1"; got != want {
		t.Errorf("WritebackToken = %s, want %s", got, want)
	}
	task := &taskpb.Task{}
	fhirmap.SetID(task, "t1")
	(fhirmap.Systems{}).SetWritebackKey(task)
	own.SetWritebackKey(task)
	own.SetWritebackKey(task) // once per system
	var systems []string
	for _, id := range task.GetIdentifier() {
		systems = append(systems, id.GetSystem().GetValue()+"|"+id.GetValue().GetValue())
	}
	if want := []string{fhirmap.WritebackIdentifierSystem + "|Task/t1", ownBase + "/Id/writeback|Task/t1"}; !cmp.Equal(systems, want) {
		t.Errorf("identifiers = %v, want %v", systems, want)
	}
}

// TestAuditEventClientUnderBase: a client is named in the deployment's
// client-id system.
func TestAuditEventClientUnderBase(t *testing.T) {
	own := mustSystems(t, ownBase)
	ev := own.AuditEvent(&linkbridge.AuditRecord{ID: "a1", ClientID: "gp-client", Recorded: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)})
	if got := get(ev, "agent", 0, "who", "identifier", "system"); got != own.Client() {
		t.Errorf("AuditEvent agent who system = %v, want %s", got, own.Client())
	}
}
