package sqlshared

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/linkbridge/linkbridge"
)

// NormalizeParam returns p as the index stores it: a Value written as
// "system|value" with no System is that token, split at its first "|"
// (linkbridge.SearchParam).
func NormalizeParam(p linkbridge.SearchParam) linkbridge.SearchParam {
	if p.System == "" {
		if sys, v, ok := strings.Cut(p.Value, "|"); ok {
			p.System, p.Value = sys, v
		}
	}
	return p
}

// NormalizeParams returns ps with each value normalized (NormalizeParam),
// ps itself when none needs it.
func NormalizeParams(ps []linkbridge.SearchParam) []linkbridge.SearchParam {
	for i, p := range ps {
		if q := NormalizeParam(p); q != p {
			out := make([]linkbridge.SearchParam, len(ps))
			copy(out, ps[:i])
			for j := i; j < len(ps); j++ {
				out[j] = NormalizeParam(ps[j])
			}
			return out
		}
	}
	return ps
}

// EncodeParams renders search parameter values as the resource.params
// column stores them: a JSON array of [name, value] pairs, [name, value,
// system] for a token with a system ("[]" for none). The values are
// normalized first (NormalizeParam).
func EncodeParams(ps []linkbridge.SearchParam) (string, error) {
	if len(ps) == 0 {
		return "[]", nil
	}
	entries := make([][]string, len(ps))
	for i, p := range NormalizeParams(ps) {
		if p.System == "" {
			entries[i] = []string{p.Name, p.Value}
		} else {
			entries[i] = []string{p.Name, p.Value, p.System}
		}
	}
	b, err := json.Marshal(entries)
	if err != nil {
		return "", fmt.Errorf("encode search parameters: %w", err)
	}
	return string(b), nil
}

// DecodeParams reads a resource.params column written by EncodeParams. An
// empty column or "[]" is no parameters (nil).
//
// A column written before migration 023 holds each token twice, as a pair
// [name, "system|value"] and a pair [name, "value"]; no pair written since
// has a "|" in its value. Such a column is read as the migration rewrote
// the index rows: the "system|value" pair as the token, and a bare pair
// dropped when a token of the same name has its value.
func DecodeParams(s string) ([]linkbridge.SearchParam, error) {
	if s == "[]" || s == "" {
		return nil, nil
	}
	var entries [][]string
	if err := json.Unmarshal([]byte(s), &entries); err != nil {
		return nil, fmt.Errorf("bad stored search parameters: %w", err)
	}
	ps := make([]linkbridge.SearchParam, 0, len(entries))
	var split map[[2]string]bool // the tokens read from "system|value" pairs
	bare := 0
	for _, e := range entries {
		switch len(e) {
		case 2:
			p := linkbridge.SearchParam{Name: e[0], Value: e[1]}
			if q := NormalizeParam(p); q != p {
				if split == nil {
					split = map[[2]string]bool{}
				}
				split[[2]string{q.Name, q.Value}] = true
				p = q
			} else {
				bare++
			}
			ps = append(ps, p)
		case 3:
			ps = append(ps, linkbridge.SearchParam{Name: e[0], Value: e[1], System: e[2]})
		default:
			return nil, fmt.Errorf("bad stored search parameters: an entry of %d strings", len(e))
		}
	}
	if split == nil || bare == 0 {
		return ps, nil
	}
	out := ps[:0]
	for i, p := range ps {
		// entries[i] is p's entry: a bare pair has no "|" in its value.
		if e := entries[i]; len(e) == 2 && !strings.Contains(e[1], "|") && split[[2]string{p.Name, p.Value}] {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

// ParamChanges compares the search parameter values a resource's stored
// version is indexed under (stored, its resource.params column) with those
// of its new version (normalized, NormalizeParam). It returns the distinct
// stored values the new version does not have, to delete from the index,
// and the set of stored values, which are indexed already and need no
// insert.
func ParamChanges(stored string, params []linkbridge.SearchParam) (del []linkbridge.SearchParam, had map[linkbridge.SearchParam]bool, err error) {
	old, err := DecodeParams(stored)
	if err != nil {
		return nil, nil, err
	}
	keep := make(map[linkbridge.SearchParam]bool, len(params))
	for _, p := range params {
		keep[NormalizeParam(p)] = true
	}
	had = make(map[linkbridge.SearchParam]bool, len(old))
	for _, p := range old {
		if had[p] {
			continue
		}
		had[p] = true
		if !keep[p] {
			del = append(del, p)
		}
	}
	return del, had, nil
}

// TokenValue is one value of a ParamFilter read as FHIR's token syntax
// (linkbridge.ParamFilter): Value, and System when BySystem.
type TokenValue struct {
	Value, System string
	BySystem      bool
}

// TokenValues reads a filter's values: "system|value", "|value" (no
// system) or a value alone (any system), with FHIR's escapes read
// (linkbridge.CutToken: `\|` is a "|" of the value). bySystem tells
// whether any value names a system (or its absence), so that the system
// must be checked.
func TokenValues(values []string) (out []TokenValue, bySystem bool) {
	out = make([]TokenValue, len(values))
	for i, v := range values {
		sys, val, ok := linkbridge.CutToken(v)
		out[i] = TokenValue{Value: val, System: sys, BySystem: ok}
		bySystem = bySystem || ok
	}
	return out, bySystem
}
