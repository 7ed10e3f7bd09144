package fhirmap_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/fhirmap"

	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	"google.golang.org/protobuf/proto"
)

// corpusDir is the shared FHIR R4 test corpus at the repository root.
var corpusDir = filepath.Join("..", "testdata", "fhir", "r4")

// baseReferralFile is a complete referral transaction (Patient,
// ServiceRequest, Task) that MapReferral accepts.
var baseReferralFile = filepath.Join(corpusDir, "bundle-referral-transaction.json")

func mustCodec(t testing.TB) *fhirjson.Codec {
	t.Helper()
	c, err := fhirjson.New()
	if err != nil {
		t.Fatalf("fhirjson.New() returned unexpected error: %v", err)
	}
	return c
}

func mustReadFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return b
}

// entriesOf turns a decoded request body into MapReferral entries the way
// the HTTP API does: a transaction Bundle through TransactionEntries, a
// message Bundle through MapMessage, any other resource as a single entry.
func entriesOf(cr *rpb.ContainedResource) ([]*fhirmap.Entry, error) {
	res := fhirmap.Unwrap(cr)
	if res == nil {
		return nil, fmt.Errorf("empty resource")
	}
	if b, ok := res.(*rpb.Bundle); ok {
		if fhirmap.Code(b.GetType()) == "message" {
			msg, err := fhirmap.MapMessage(b)
			if err != nil {
				return nil, err
			}
			return msg.Entries, nil
		}
		return fhirmap.TransactionEntries(b)
	}
	return []*fhirmap.Entry{{Resource: res, Path: fhirmap.TypeName(res)}}, nil
}

// mustEntries decodes a FHIR JSON body and returns its entries.
func mustEntries(t testing.TB, c *fhirjson.Codec, body []byte) []*fhirmap.Entry {
	t.Helper()
	cr, err := c.Decode(body)
	if err != nil {
		t.Fatalf("Decode() returned unexpected error: %v", err)
	}
	entries, err := entriesOf(cr)
	if err != nil {
		t.Fatalf("entries: unexpected error: %v", err)
	}
	return entries
}

// jsonDoc is a FHIR resource as generic JSON, for building variants of a
// fixture in table tests.
type jsonDoc = map[string]any

func mustParseJSON(t testing.TB, b []byte) jsonDoc {
	t.Helper()
	var d jsonDoc
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("parse fixture JSON: %v", err)
	}
	return d
}

func mustMarshalJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal JSON: %v", err)
	}
	return b
}

// bundleResource returns the resource of the first Bundle entry of type typ.
func bundleResource(t testing.TB, b jsonDoc, typ string) jsonDoc {
	t.Helper()
	for _, e := range b["entry"].([]any) {
		r := e.(jsonDoc)["resource"].(jsonDoc)
		if r["resourceType"] == typ {
			return r
		}
	}
	t.Fatalf("fixture has no %s entry", typ)
	return nil
}

// removeEntries drops every Bundle entry whose resource is of type typ.
func removeEntries(b jsonDoc, typ string) {
	var keep []any
	for _, e := range b["entry"].([]any) {
		if e.(jsonDoc)["resource"].(jsonDoc)["resourceType"] != typ {
			keep = append(keep, e)
		}
	}
	b["entry"] = keep
}

// addEntry appends a POST entry to a transaction Bundle.
func addEntry(b jsonDoc, fullURL string, res jsonDoc) {
	b["entry"] = append(b["entry"].([]any), jsonDoc{
		"fullUrl":  fullURL,
		"resource": res,
		"request":  jsonDoc{"method": "POST", "url": res["resourceType"]},
	})
}

// cloneProto is proto.Clone with the concrete type kept.
func cloneProto[T proto.Message](m T) T { return proto.Clone(m).(T) }
