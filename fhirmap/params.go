package fhirmap

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/linkbridge/linkbridge"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// SearchType is the type of a FHIR R4 search parameter, as a
// CapabilityStatement's searchParam.type names it
// (docs/referral-exchange.md#search-parameters).
type SearchType string

// The search parameter types linkbridge implements.
const (
	// SearchToken matches a code, a Coding or an Identifier: "value" or
	// "system|value".
	SearchToken SearchType = "token"
	// SearchReference matches a Reference: "Type/id", a bare id, or with
	// the :identifier modifier the reference's logical identifier.
	SearchReference SearchType = "reference"
	// SearchDate matches a date or instant, with an optional prefix (eq,
	// gt, ge, lt, le).
	SearchDate SearchType = "date"
)

// SearchParameter is one search parameter of a resource type: a row of the
// search parameter table, the one place a parameter is added
// (docs/referral-exchange.md#search-parameters). The table drives the
// indexing (SearchParams), the validation of queries, _include and the
// CapabilityStatement's searchParam lists.
type SearchParameter struct {
	// Name is the parameter's name in a query, e.g. "based-on".
	Name string
	// Type is its FHIR search type.
	Type SearchType
	// Path is the element it searches, in FHIR's JSON element names, e.g.
	// "Task.for"; "Resource.id" and "Resource.meta.lastUpdated" for _id and
	// _lastUpdated.
	Path string
	// Field is the proto field of that top-level element, e.g. "for_value".
	// It is empty for _id and _lastUpdated, which the store keeps as
	// columns of every resource rather than as indexed values.
	Field protoreflect.Name
	// Targets are, for a reference parameter, the resource types a bare id
	// stands for: a search for "123" searches Type/123 for each.
	Targets []string
	// Only, for a reference parameter, restricts it to references to its
	// Targets: FHIR R4 defines patient as the subject (or for) that is a
	// Patient. The element's other reference parameters leave those
	// references to it, so a Patient subject is indexed once, as patient.
	Only bool
	// Include tells whether _include=Type:Name is supported (a singular
	// reference element).
	Include bool
}

// Reference targets shared by the table's rows.
var (
	toPatient        = []string{"Patient"}
	toSubject        = []string{"Patient", "Group"}
	toServiceRequest = []string{"ServiceRequest"}
	toOwner          = []string{"Organization", "PractitionerRole", "Practitioner", "HealthcareService"}
	toRequester      = []string{"Organization", "PractitionerRole", "Practitioner"}
	toBasedOn        = []string{"ServiceRequest", "CarePlan"}
	toTask           = []string{"Task"}
	toGP             = []string{"Organization", "Practitioner", "PractitionerRole"}
)

// Rows used by several types.
var (
	identifierParam = SearchParameter{Name: "identifier", Type: SearchToken, Field: "identifier"}
	statusParam     = SearchParameter{Name: "status", Type: SearchToken, Field: "status"}
	intentParam     = SearchParameter{Name: "intent", Type: SearchToken, Field: "intent"}
	codeParam       = SearchParameter{Name: "code", Type: SearchToken, Field: "code"}
	categoryParam   = SearchParameter{Name: "category", Type: SearchToken, Field: "category"}
	// subject and patient on the element subject (FHIR R4 Condition,
	// ServiceRequest and the case view's types).
	patientOfSubject = SearchParameter{Name: "patient", Type: SearchReference, Field: "subject", Targets: toPatient, Only: true}
	subjectParam     = SearchParameter{Name: "subject", Type: SearchReference, Field: "subject", Targets: toSubject}
	basedOnParam     = SearchParameter{Name: "based-on", Type: SearchReference, Field: "based_on", Targets: toBasedOn}
)

// resourceSearchParams are the parameters of every resource type in the
// table (FHIR R4 search.html#all), first in each type's list.
var resourceSearchParams = []SearchParameter{
	{Name: "_id", Type: SearchToken, Path: "Resource.id"},
	{Name: "_lastUpdated", Type: SearchDate, Path: "Resource.meta.lastUpdated"},
}

// searchTable is the search parameter table: each resource type the API
// reads and searches, with the parameters it supports beyond _id and
// _lastUpdated, in the order the CapabilityStatement lists them. Path is
// filled in from Field. A type or a parameter is added here and nowhere
// else.
var searchTable = map[string][]SearchParameter{
	"Task": {
		identifierParam, statusParam,
		{Name: "patient", Type: SearchReference, Field: "for_value", Targets: toPatient, Only: true, Include: true},
		{Name: "subject", Type: SearchReference, Field: "for_value", Targets: toSubject},
		{Name: "focus", Type: SearchReference, Field: "focus", Targets: toServiceRequest, Include: true},
		{Name: "owner", Type: SearchReference, Field: "owner", Targets: toOwner, Include: true},
		{Name: "requester", Type: SearchReference, Field: "requester", Targets: toRequester, Include: true},
		basedOnParam,
		{Name: "part-of", Type: SearchReference, Field: "part_of", Targets: toTask},
		codeParam, intentParam,
	},
	"ServiceRequest": {
		identifierParam, statusParam,
		{Name: "patient", Type: SearchReference, Field: "subject", Targets: toPatient, Only: true, Include: true},
		subjectParam,
		{Name: "requester", Type: SearchReference, Field: "requester", Targets: toRequester, Include: true},
		{Name: "performer", Type: SearchReference, Field: "performer", Targets: toOwner},
		basedOnParam, codeParam, categoryParam, intentParam,
	},
	"Patient": {
		identifierParam,
		{Name: "general-practitioner", Type: SearchReference, Field: "general_practitioner", Targets: toGP},
	},
	"Organization":      {identifierParam},
	"Practitioner":      {identifierParam},
	"PractitionerRole":  {identifierParam},
	"HealthcareService": {identifierParam},
	"Condition":         {identifierParam, patientOfSubject, subjectParam, codeParam, categoryParam},
	"Consent": {
		identifierParam,
		{Name: "patient", Type: SearchReference, Field: "patient", Targets: toPatient, Only: true},
		statusParam, categoryParam,
	},
	// The FHIR view of case records (CaseView).
	"CarePlan": {patientOfSubject, subjectParam, statusParam},
	// Goal's status is lifecycleStatus (FHIR R4 goal.html#search): without
	// the row, lifecycle-status was an unknown parameter, dropped, and a
	// search for active goals answered completed ones too.
	"Goal": {
		patientOfSubject, subjectParam,
		{Name: "lifecycle-status", Type: SearchToken, Field: "lifecycle_status"},
		{Name: "achievement-status", Type: SearchToken, Field: "achievement_status"},
		categoryParam,
	},
	"Encounter":   {patientOfSubject, subjectParam, basedOnParam, statusParam},
	"Observation": {patientOfSubject, subjectParam, basedOnParam, codeParam, categoryParam, statusParam},
	"Procedure":   {patientOfSubject, subjectParam, basedOnParam, codeParam, statusParam},
}

// The kinds of indexed element, in the order SearchParams emits them.
const (
	kindIdentifier      = iota // Identifier: a token, value with system
	kindCode                   // a code (google/fhir: a message with an enum value)
	kindCodeableConcept        // CodeableConcept: each Coding a token, code with system
	kindReference              // Reference: "Type/id"; "<name>:identifier" a token
)

// indexedParam is a table row SearchParams indexes, resolved against its
// type's descriptor.
type indexedParam struct {
	*SearchParameter
	fd   protoreflect.FieldDescriptor
	kind int
	// leave are the reference target types an Only parameter on the same
	// element indexes instead of this one.
	leave []string
}

// typeSearch is one type's row of the resolved table.
type typeSearch struct {
	params  []SearchParameter // resourceSearchParams, then the type's
	byName  map[string]int
	indexed []indexedParam // in the order SearchParams emits them
}

// searchTables resolves searchTable once: fills in Path, finds each
// field's descriptor and kind, and orders the indexed rows. It panics on
// a row that does not match the R4 protos (TestSearchTable runs it).
var searchTables = sync.OnceValue(func() map[string]*typeSearch {
	descs := resourceDescriptors()
	out := make(map[string]*typeSearch, len(searchTable))
	for typ, rows := range searchTable {
		md := descs[typ]
		if md == nil {
			panic(fmt.Sprintf("fhirmap: search table: %s is not an R4 resource type", typ))
		}
		ts := &typeSearch{byName: map[string]int{}}
		ts.params = append(slices.Clone(resourceSearchParams), rows...)
		for i := range ts.params {
			p := &ts.params[i]
			if _, dup := ts.byName[p.Name]; dup {
				panic(fmt.Sprintf("fhirmap: search table: %s has %s twice", typ, p.Name))
			}
			ts.byName[p.Name] = i
			if p.Field == "" {
				continue
			}
			fd := md.Fields().ByName(p.Field)
			if fd == nil || fd.Kind() != protoreflect.MessageKind {
				panic(fmt.Sprintf("fhirmap: search table: %s.%s is not a message field of %s", typ, p.Field, typ))
			}
			p.Path = typ + "." + fd.JSONName()
			kind, ok := elementKind(fd.Message())
			if !ok || (kind == kindReference) != (p.Type == SearchReference) {
				panic(fmt.Sprintf("fhirmap: search table: %s %s cannot index %s (%s)", typ, p.Name, p.Path, fd.Message().FullName()))
			}
			if (p.Include || p.Only || len(p.Targets) > 0) && (p.Type != SearchReference || p.Include && fd.IsList()) {
				panic(fmt.Sprintf("fhirmap: search table: %s %s: Targets, Only and Include are for reference parameters, Include for a single element", typ, p.Name))
			}
			ts.indexed = append(ts.indexed, indexedParam{SearchParameter: p, fd: fd, kind: kind})
		}
		for i := range ts.indexed {
			ip := &ts.indexed[i]
			for _, other := range ts.indexed {
				if other.Only && other.Field == ip.Field && other.Name != ip.Name {
					ip.leave = append(ip.leave, other.Targets...)
				}
			}
		}
		slices.SortStableFunc(ts.indexed, func(a, b indexedParam) int { return a.kind - b.kind })
		out[typ] = ts
	}
	return out
})

// elementKind tells how SearchParams indexes an element of message type md.
func elementKind(md protoreflect.MessageDescriptor) (int, bool) {
	switch md.FullName() {
	case (*dpb.Identifier)(nil).ProtoReflect().Descriptor().FullName():
		return kindIdentifier, true
	case (*dpb.CodeableConcept)(nil).ProtoReflect().Descriptor().FullName():
		return kindCodeableConcept, true
	case (*dpb.Reference)(nil).ProtoReflect().Descriptor().FullName():
		return kindReference, true
	}
	if fd := md.Fields().ByName("value"); fd != nil && fd.Kind() == protoreflect.EnumKind {
		return kindCode, true
	}
	return 0, false
}

// resourceDescriptors maps every R4 resource type name to its message
// descriptor, read once from the ContainedResource descriptor.
var resourceDescriptors = sync.OnceValue(func() map[string]protoreflect.MessageDescriptor {
	od := (*rpb.ContainedResource)(nil).ProtoReflect().Descriptor().Oneofs().ByName("oneof_resource")
	out := make(map[string]protoreflect.MessageDescriptor, od.Fields().Len())
	for i := 0; i < od.Fields().Len(); i++ {
		md := od.Fields().Get(i).Message()
		out[string(md.Name())] = md
	}
	return out
})

// SearchTypes returns the resource types that have search parameters, the
// types the API reads and searches, sorted.
func SearchTypes() []string {
	out := make([]string, 0, len(searchTable))
	for typ := range searchTable {
		out = append(out, typ)
	}
	sort.Strings(out)
	return out
}

// SearchParameters returns the search parameters of a resource type: _id
// and _lastUpdated, then the type's own in table order (the order the
// CapabilityStatement lists them). It returns nil for a type the API does
// not search. The Targets slices are shared and must not be modified.
func SearchParameters(typ string) []SearchParameter {
	ts := searchTables()[typ]
	if ts == nil {
		return nil
	}
	return slices.Clone(ts.params)
}

// LookupSearchParameter returns the search parameter name of typ, without
// any modifier ("owner", not "owner:identifier").
func LookupSearchParameter(typ, name string) (SearchParameter, bool) {
	ts := searchTables()[typ]
	if ts == nil {
		return SearchParameter{}, false
	}
	i, ok := ts.byName[name]
	if !ok {
		return SearchParameter{}, false
	}
	return ts.params[i], true
}

// ReferenceIndexName returns the parameter under which SearchParams indexes
// a reference to a resource of type target that the reference parameter
// name of typ finds: name itself, or the Only parameter of the same
// element that takes such references (on ServiceRequest, a subject that is
// a Patient is indexed as patient).
func ReferenceIndexName(typ, name, target string) string {
	ts := searchTables()[typ]
	if ts == nil {
		return name
	}
	i, ok := ts.byName[name]
	if !ok {
		return name
	}
	p := ts.params[i]
	if p.Type != SearchReference || p.Only {
		return name
	}
	for _, q := range ts.params {
		if q.Only && q.Field == p.Field && slices.Contains(q.Targets, target) {
			return q.Name
		}
	}
	return name
}

// IndexNames returns the names under which SearchParams indexes the values
// of the search parameter name of typ, for a :missing search (a resource
// has a value for the parameter when it has one under any of them): the
// name itself; for a reference parameter also "<name>:identifier" and,
// when an Only parameter of the same element takes some of its references
// (a Task subject that is a Patient is indexed as patient), that
// parameter's name. It returns nil for _id and _lastUpdated, which every
// resource has, and for a name typ does not have.
func IndexNames(typ, name string) []string {
	ts := searchTables()[typ]
	if ts == nil {
		return nil
	}
	i, ok := ts.byName[name]
	if !ok || ts.params[i].Field == "" {
		return nil
	}
	p := ts.params[i]
	out := []string{p.Name}
	if p.Type != SearchReference {
		return out
	}
	out = append(out, p.Name+":identifier")
	for _, q := range ts.params {
		if q.Only && !p.Only && q.Field == p.Field {
			out = append(out, q.Name)
		}
	}
	return out
}

// SearchParams computes the search parameter values the store indexes for a
// resource, for every parameter of its type in the search table
// (SearchParameters) but _id and _lastUpdated: identifiers (each a token:
// its value, with its system in System), codes, CodeableConcepts (each
// Coding a token: its code with its system) and references (as "Type/id",
// and a logical reference's identifier as a token under
// "<param>:identifier"). A token is indexed once; a search finds it with or
// without its system (linkbridge.ParamFilter). A
// subject that is a Patient is indexed once, as patient. Values come
// grouped by element kind (identifiers, codes, CodeableConcepts,
// references), each group in table order. A type outside the table has
// none.
func SearchParams(res proto.Message) []linkbridge.SearchParam {
	ts := searchTables()[TypeName(res)]
	if ts == nil {
		return nil
	}
	var out []linkbridge.SearchParam
	add := func(name, value string) {
		if value != "" {
			out = append(out, linkbridge.SearchParam{Name: name, Value: value})
		}
	}
	token := func(name, system, value string) {
		if value != "" {
			out = append(out, linkbridge.SearchParam{Name: name, Value: value, System: system})
		}
	}
	m := res.ProtoReflect()
	for i := range ts.indexed {
		ip := &ts.indexed[i]
		fd := ip.fd
		if fd.ContainingMessage() != m.Descriptor() {
			// Not the generated type the table was resolved against.
			if fd = m.Descriptor().Fields().ByName(ip.Field); fd == nil {
				continue
			}
		}
		switch ip.kind {
		case kindIdentifier:
			for _, id := range messages[*dpb.Identifier](m, fd) {
				token(ip.Name, id.GetSystem().GetValue(), id.GetValue().GetValue())
			}
		case kindCode:
			if m.Has(fd) {
				add(ip.Name, Code(m.Get(fd).Message().Interface()))
			}
		case kindCodeableConcept:
			for _, cc := range messages[*dpb.CodeableConcept](m, fd) {
				for _, c := range cc.GetCoding() {
					token(ip.Name, c.GetSystem().GetValue(), c.GetCode().GetValue())
				}
			}
		case kindReference:
			for _, ref := range messages[*dpb.Reference](m, fd) {
				typ, id := RefTarget(ref)
				switch {
				case typ == "" || typ == "#":
				case ip.Only && !slices.Contains(ip.Targets, typ):
				case slices.Contains(ip.leave, typ):
					// indexed under the Only parameter; parseSearch
					// searches it there (ReferenceIndexName)
				default:
					add(ip.Name, typ+"/"+id)
				}
				if lid := ref.GetIdentifier(); lid != nil {
					token(ip.Name+":identifier", lid.GetSystem().GetValue(), lid.GetValue().GetValue())
				}
			}
		}
	}
	return out
}

// messages returns the messages of a singular or repeated message field
// whose elements are of type T.
func messages[T proto.Message](m protoreflect.Message, fd protoreflect.FieldDescriptor) []T {
	if fd.Kind() != protoreflect.MessageKind || !m.Has(fd) {
		return nil
	}
	var out []T
	if fd.IsList() {
		l := m.Get(fd).List()
		for i := 0; i < l.Len(); i++ {
			if t, ok := l.Get(i).Message().Interface().(T); ok {
				out = append(out, t)
			}
		}
		return out
	}
	if t, ok := m.Get(fd).Message().Interface().(T); ok {
		out = append(out, t)
	}
	return out
}

// indexingRevision counts changes to how SearchParams derives values from
// an element (normalisation, which references or identifiers it indexes)
// that the table's rows do not show. Bump it with such a change, so that
// SearchIndexVersion changes and stored resources are re-indexed.
const indexingRevision = 1

// SearchIndexVersion names the search index that SearchParams builds: a
// digest of the search parameter table (every type's indexed rows) and of
// indexingRevision. A store whose index was built with another version is
// re-indexed from its stored resources (intake.Reindex), so that a
// parameter added to the table finds resources stored before it
// (docs/referral-exchange.md#search-parameters).
var SearchIndexVersion = sync.OnceValue(func() string {
	h := sha256.New()
	_, _ = fmt.Fprintf(h, "revision %d\n", indexingRevision)
	for _, typ := range SearchTypes() {
		ts := searchTables()[typ]
		for _, ip := range ts.indexed {
			_, _ = fmt.Fprintf(h, "%s %s %s %s %v %v\n", typ, ip.Name, ip.Type, ip.Field, ip.Targets, ip.Only)
		}
	}
	return "sp1-" + hex.EncodeToString(h.Sum(nil))[:16]
})
