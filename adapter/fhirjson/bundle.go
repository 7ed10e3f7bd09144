package fhirjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/tidwall/gjson"

	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
)

// EncodeBundle renders b with some entries' resources given as JSON: when
// raw[i] is not nil it is the resource of b.Entry[i] as stored (validated
// when it was stored), spliced into the rendered envelope as it is instead
// of b.Entry[i].Resource; nothing is re-marshalled or re-scanned. raw is
// nil or as long as b.Entry. Errors are internal (EINTERNAL).
func (c *Codec) EncodeBundle(b *rpb.Bundle, raw [][]byte) ([]byte, error) {
	env, err := c.Encode(b)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(raw, func(r []byte) bool { return r != nil }) {
		return env, nil
	}
	if len(raw) != len(b.GetEntry()) {
		return nil, fmt.Errorf("fhirjson: encode Bundle: %d raw resources for %d entries", len(raw), len(b.GetEntry()))
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(env, &top); err != nil {
		return nil, err
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(top["entry"], &entries); err != nil {
		return nil, err
	}
	// The envelope is jsonformat's and the resources are stored bytes, so
	// the parts are joined as they are.
	size := len(env)
	for _, r := range raw {
		size += len(r) + 16
	}
	out := make([]byte, 0, size)
	out = append(out, `{"resourceType":`...)
	out = append(out, top["resourceType"]...)
	keys := make([]string, 0, len(top))
	for k := range top {
		if k != "resourceType" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		out = append(out, ',')
		out = strconv.AppendQuote(out, k)
		out = append(out, ':')
		if k != "entry" {
			out = append(out, top[k]...)
			continue
		}
		out = append(out, '[')
		for i, e := range entries {
			if i > 0 {
				out = append(out, ',')
			}
			if raw[i] == nil {
				out = append(out, e...)
				continue
			}
			rest := bytes.TrimSpace(bytes.TrimPrefix(bytes.TrimSpace(e), []byte("{")))
			out = append(out, `{"resource":`...)
			out = append(out, raw[i]...)
			if len(rest) > 0 && rest[0] != '}' {
				out = append(out, ',')
			}
			out = append(out, rest...)
		}
		out = append(out, ']')
	}
	return append(out, '}'), nil
}

// EntryResources returns the JSON of each Bundle.entry.resource of body, a
// Bundle that Decode accepted, exactly as received: one element per entry,
// nil for an entry without a resource object.
func EntryResources(body []byte) [][]byte {
	var out [][]byte
	gjson.GetBytes(body, "entry").ForEach(func(_, be gjson.Result) bool {
		var raw []byte
		if res := be.Get("resource"); res.IsObject() {
			raw = []byte(res.Raw)
		}
		out = append(out, raw)
		return true
	})
	return out
}

// BundleEntryCount reports whether body is a Bundle and how many entries it
// has, without decoding it: a cheap look (one scan with gjson) so that a
// Bundle over a size cap is refused before the ~0.2 ms a resource that
// decoding costs.
func BundleEntryCount(body []byte) (n int, isBundle bool) {
	r := gjson.GetManyBytes(body, "resourceType", "entry.#")
	if r[0].Str != "Bundle" {
		return 0, false
	}
	return int(r[1].Int()), true
}
