package bodyzip

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/linkbridge/linkbridge/adapter/fhirjson"
)

// writeDictionary makes TestDictionaryBuild write dictionary-1.ndjson and
// its sources list instead of comparing them. Dictionary 1 is shipped:
// TestDictionaryFrozen fails if the written file differs from it.
var writeDictionary = flag.Bool("write-dictionary", false, "write dictionary-1.ndjson from the fixtures")

// dictionary1SHA256 pins dictionary 1. Never change it: stored bodies name
// the dictionary by its ID, and only these bytes decode them.
const dictionary1SHA256 = "a2a754ae512d0c286342eb09e2b4fec39ecfe0b6ef535bd4c4ad82175c001322"

// repoRoot is the repository root, from this package's directory.
const repoRoot = "../../.."

// dictionary1Sources are the fixtures dictionary 1 is built from, as paths
// from the repository root: resources GP systems send (as the gateway
// stores them) and the gateway's own fhirmap output, the case view golden
// files. own-base.golden.json is left out: it is full-consent's resources
// with other references.
var dictionary1Sources = []string{
	"testdata/fhir/r4/valid/servicerequest-contained-patient.json",
	"testdata/fhir/r4/valid/servicerequest-subject-nhs-number.json",
	"testdata/fhir/r4/valid/task-contained-servicerequest.json",
	"testdata/fhir/r4/valid/message-referral-new.json",
	"testdata/fhir/r4/valid/message-referral-cancel.json",
	"testdata/fhir/r4/valid/transaction-practitionerrole-healthcareservice.json",
	"fhirmap/testdata/transaction-self-referral.input.json",
	"fhirmap/testdata/transaction-vcse.input.json",
	"fhirmap/testdata/transaction-pharmacy.input.json",
	"fhirmap/testdata/caseview/declined.golden.json",
	"fhirmap/testdata/caseview/codes-only.golden.json",
	"fhirmap/testdata/caseview/full-consent.golden.json",
}

// dictionaryTypes are the resource types a dictionary holds, least useful
// first: the types a referral's journey stores most of, by bytes, come
// last, nearest the data. Other types in the sources (Organization,
// MessageHeader...) are not stored as resources and are left out.
var dictionaryTypes = []string{
	"Patient", "Procedure", "Goal", "CarePlan", "ServiceRequest", "Observation", "Encounter", "Task",
}

// maxDictionary bounds a dictionary's size: each encoder and decoder keeps
// its content, and history far from the data is rarely worth its cost.
const maxDictionary = 112 << 10

// buildDictionary returns a dictionary's content from sources: every
// resource of dictionaryTypes in them, decoded and encoded again with the
// gateway's codec (compact FHIR JSON, as the store holds it), each once,
// ordered by type as dictionaryTypes says and then by source order, one a
// line. It also returns the sources list: each source's SHA-256 and path.
func buildDictionary(sources []string) (content, list []byte, err error) {
	codec, err := fhirjson.New()
	if err != nil {
		return nil, nil, err
	}
	type entry struct {
		rank int
		body []byte
	}
	var (
		entries []entry
		seen    = map[string]bool{}
		sums    bytes.Buffer
	)
	for _, src := range sources {
		b, err := os.ReadFile(filepath.Join(repoRoot, src))
		if err != nil {
			return nil, nil, err
		}
		sum := sha256.Sum256(b)
		fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(sum[:]), src)
		var doc any
		if err := json.Unmarshal(b, &doc); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", src, err)
		}
		for _, raw := range resources(doc) {
			typ := raw["resourceType"].(string)
			rank := slices.Index(dictionaryTypes, typ)
			if rank < 0 {
				continue
			}
			js, err := json.Marshal(raw)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", src, err)
			}
			res, err := codec.DecodeResource(js)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %s: %w", src, typ, err)
			}
			body, err := codec.Encode(res)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %s: %w", src, typ, err)
			}
			if seen[string(body)] {
				continue
			}
			seen[string(body)] = true
			entries = append(entries, entry{rank, body})
		}
	}
	slices.SortStableFunc(entries, func(a, b entry) int { return a.rank - b.rank })
	var out bytes.Buffer
	for _, e := range entries {
		out.Write(e.body)
		out.WriteByte('\n')
	}
	if out.Len() > maxDictionary {
		return nil, nil, fmt.Errorf("dictionary is %d bytes, over %d", out.Len(), maxDictionary)
	}
	return out.Bytes(), sums.Bytes(), nil
}

// resources returns the JSON objects in doc that carry a resourceType, in
// document order, without looking inside them (a contained resource stays
// part of the resource holding it).
func resources(doc any) []map[string]any {
	var out []map[string]any
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if _, ok := v["resourceType"].(string); ok && v["resourceType"] != "Bundle" {
				out = append(out, v)
				return
			}
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				walk(v[k])
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(doc)
	return out
}

// TestDictionaryBuild checks that dictionary-1.ndjson is what
// buildDictionary makes of its sources, so the embedded file cannot drift
// from its recipe unnoticed. A source fixture edited since (its SHA-256 no
// longer the one dictionary-1.sources records) skips the comparison:
// dictionary 1 stays as shipped whatever its sources become.
func TestDictionaryBuild(t *testing.T) {
	content, list, err := buildDictionary(dictionary1Sources)
	if err != nil {
		t.Fatal(err)
	}
	if *writeDictionary {
		if err := os.WriteFile("dictionary-1.ndjson", content, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("dictionary-1.sources", list, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote dictionary-1.ndjson: %d bytes, SHA-256 %x", len(content), sha256.Sum256(content))
		return
	}
	recorded, err := os.ReadFile("dictionary-1.sources")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(recorded, list) {
		t.Skipf("a source of dictionary 1 changed since it was built; dictionary 1 stays as shipped (TestDictionaryFrozen).\nrecorded:\n%s\nnow:\n%s", recorded, list)
	}
	if !bytes.Equal(content, dictionary1) {
		t.Fatalf("dictionary-1.ndjson (%d bytes) is not what its sources build (%d bytes)", len(dictionary1), len(content))
	}
	if n := strings.Count(string(content), "\n"); n < 20 {
		t.Fatalf("dictionary 1 holds %d resources, want a few dozen", n)
	}
}

// TestDictionaryFrozen checks that dictionary 1 is the one shipped.
func TestDictionaryFrozen(t *testing.T) {
	if got := fmt.Sprintf("%x", sha256.Sum256(dictionary1)); got != dictionary1SHA256 {
		t.Fatalf("dictionary 1 changed (SHA-256 %s, shipped %s): stored bodies name it and need its exact bytes; put new content in a new dictionary with the next ID", got, dictionary1SHA256)
	}
}
