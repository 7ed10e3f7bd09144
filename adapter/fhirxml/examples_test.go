package fhirxml_test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/adapter/fhirxml"
)

// repoTestdata is the repository's FHIR test corpus.
var repoTestdata = filepath.Join("..", "..", "testdata")

// sharedExamplesDir returns the published FHIR examples (shared/fhir-examples,
// PROVENANCE.md there), read in place, or skips the test when they are
// absent. They sit beside the checkout (../shared from the repository root,
// as adapter/httpapi/examples_test.go expects); a git worktree under
// /work/wt/<name> is one level deeper, so that place is tried too.
func sharedExamplesDir(t testing.TB) string {
	t.Helper()
	dir := sharedExamplesDirOrEmpty()
	if dir == "" {
		t.Skip("shared/fhir-examples not available")
	}
	return dir
}

// sharedExamplesDirOrEmpty is sharedExamplesDir without the skip: "" when
// the examples are absent.
func sharedExamplesDirOrEmpty() string {
	for _, dir := range []string{
		filepath.Join("..", "..", "..", "shared", "fhir-examples"),
		filepath.Join("..", "..", "..", "..", "shared", "fhir-examples"),
	} {
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			return dir
		}
	}
	return ""
}

// filesWithSuffix lists the files under dir whose names end in suffix.
func filesWithSuffix(t testing.TB, dir, suffix string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), suffix) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return files
}

func newCodecs(t testing.TB) (*fhirjson.Codec, *fhirxml.Codec) {
	t.Helper()
	jc, err := fhirjson.New()
	if err != nil {
		t.Fatal(err)
	}
	xc, err := fhirxml.New(jc)
	if err != nil {
		t.Fatal(err)
	}
	return jc, xc
}

// TestXMLExamples: every published FHIR XML example converts to JSON that
// the JSON codec accepts, Codec.Decode gives the same message, and
// XML -> JSON -> XML -> JSON is stable, as is Encode -> Decode.
//
// No JSON form of these examples exists (PROVENANCE.md), so there is no
// independent proto to compare with.
func TestXMLExamples(t *testing.T) {
	t.Parallel()
	dir := sharedExamplesDir(t)
	jc, xc := newCodecs(t)
	files := filesWithSuffix(t, dir, ".xml")
	if len(files) < 12 {
		t.Fatalf("found %d XML examples under %s, want the 12 listed in PROVENANCE.md", len(files), dir)
	}
	for _, path := range files {
		name, _ := filepath.Rel(dir, path)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			x, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			j, err := fhirxml.ToJSON(x)
			if err != nil {
				t.Fatalf("ToJSON: %v", err)
			}
			want, err := jc.Decode(j)
			if err != nil {
				t.Fatalf("fhirjson Decode(ToJSON): %v", err)
			}
			got, err := xc.Decode(x)
			if err != nil {
				t.Fatalf("Codec.Decode: %v", err)
			}
			if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
				t.Errorf("Codec.Decode differs from fhirjson Decode(ToJSON) (-want +got):\n%s", diff)
			}
			x2, err := fhirxml.FromJSON(j)
			if err != nil {
				t.Fatalf("FromJSON(ToJSON): %v", err)
			}
			j2, err := fhirxml.ToJSON(x2)
			if err != nil {
				t.Fatalf("ToJSON(FromJSON(ToJSON)): %v", err)
			}
			if !bytes.Equal(j, j2) {
				t.Errorf("XML -> JSON -> XML -> JSON is not stable:\nfirst  %s\nsecond %s", j, j2)
			}
			enc, err := xc.Encode(got)
			if err != nil {
				t.Fatalf("Codec.Encode: %v", err)
			}
			back, err := xc.Decode(enc)
			if err != nil {
				t.Fatalf("Codec.Decode(Encode): %v", err)
			}
			if diff := cmp.Diff(got, back, protocmp.Transform()); diff != "" {
				t.Errorf("Decode(Encode(m)) != m (-want +got):\n%s", diff)
			}
		})
	}
}

// TestJSONExamples: every JSON example (shared/fhir-examples and the
// repository's testdata) that the JSON codec accepts survives
// JSON -> XML -> JSON with an equal proto; one it refuses is refused after
// the trip too (FromJSON itself refuses most: the BaRS examples' known
// defects are an array where R4 has one value, an object where R4 has an
// array, and an upper-case element name).
func TestJSONExamples(t *testing.T) {
	t.Parallel()
	jc, xc := newCodecs(t)
	files := filesWithSuffix(t, repoTestdata, ".json")
	if dir := sharedExamplesDirOrEmpty(); dir != "" {
		files = append(files, filesWithSuffix(t, dir, ".json")...)
	}
	if len(files) == 0 {
		t.Fatal("no JSON examples found")
	}
	for _, path := range files {
		t.Run(strings.TrimLeft(strings.ReplaceAll(path, "..", ""), "/"), func(t *testing.T) {
			t.Parallel()
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want, decodeErr := jc.Decode(b)
			x, err := fhirxml.FromJSON(b)
			if err != nil {
				if decodeErr == nil {
					t.Fatalf("FromJSON: %v (fhirjson accepts the file)", err)
				}
				return // refused by both
			}
			j, err := fhirxml.ToJSON(x)
			if err != nil {
				t.Fatalf("ToJSON(FromJSON): %v\nXML: %s", err, x)
			}
			got, err := jc.Decode(j)
			if decodeErr != nil {
				if err == nil {
					t.Fatalf("fhirjson refuses the file (%v) but accepts it after JSON -> XML -> JSON", decodeErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("fhirjson Decode(ToJSON(FromJSON)): %v", err)
			}
			if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
				t.Errorf("JSON -> XML -> JSON changed the resource (-want +got):\n%s", diff)
			}
			enc, err := xc.Encode(want)
			if err != nil {
				t.Fatalf("Codec.Encode: %v", err)
			}
			back, err := xc.Decode(enc)
			if err != nil {
				t.Fatalf("Codec.Decode(Encode): %v", err)
			}
			if !proto.Equal(want, back) {
				t.Errorf("Decode(Encode(m)) != m")
			}
		})
	}
}
