package sqlshared

import (
	"encoding/json"
	"fmt"

	"github.com/linkbridge/linkbridge"
)

// EncodeParams renders search parameter values as the resource.params
// column stores them: a JSON array of [name, value] pairs ("[]" for none).
func EncodeParams(ps []linkbridge.SearchParam) (string, error) {
	if len(ps) == 0 {
		return "[]", nil
	}
	pairs := make([][2]string, len(ps))
	for i, p := range ps {
		pairs[i] = [2]string{p.Name, p.Value}
	}
	b, err := json.Marshal(pairs)
	if err != nil {
		return "", fmt.Errorf("encode search parameters: %w", err)
	}
	return string(b), nil
}

// DecodeParams reads a resource.params column written by EncodeParams. An
// empty column or "[]" is no parameters (nil).
func DecodeParams(s string) ([]linkbridge.SearchParam, error) {
	if s == "[]" || s == "" {
		return nil, nil
	}
	var pairs [][2]string
	if err := json.Unmarshal([]byte(s), &pairs); err != nil {
		return nil, fmt.Errorf("bad stored search parameters: %w", err)
	}
	ps := make([]linkbridge.SearchParam, len(pairs))
	for i, p := range pairs {
		ps[i] = linkbridge.SearchParam{Name: p[0], Value: p[1]}
	}
	return ps, nil
}

// ParamChanges compares the search parameter values a resource's stored
// version is indexed under (stored, its resource.params column) with those
// of its new version. It returns the distinct stored values the new version
// does not have, to delete from the index, and the set of stored values,
// which are indexed already and need no insert.
func ParamChanges(stored string, params []linkbridge.SearchParam) (del []linkbridge.SearchParam, had map[linkbridge.SearchParam]bool, err error) {
	old, err := DecodeParams(stored)
	if err != nil {
		return nil, nil, err
	}
	keep := make(map[linkbridge.SearchParam]bool, len(params))
	for _, p := range params {
		keep[p] = true
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
