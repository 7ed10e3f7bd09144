package fhirxml_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/fhir/go/fhirversion"

	linkbridge "github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/adapter/fhirxml"
)

const ns = ` xmlns="http://hl7.org/fhir"`

// TestConvert: XML -> JSON gives exactly want, and want -> XML gives exactly
// the canonical XML (elements in FHIR order, compact), which converts back
// to want.
func TestConvert(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		xml  string // input
		json string // ToJSON(xml)
		// canon is FromJSON(json) without the XML declaration; "" when it
		// equals xml.
		canon string
	}{
		{
			name: "PrimitiveWithIDAndExtension",
			xml:  `<Patient` + ns + `><birthDate id="b1" value="1970-01-01"><extension url="http://example.org/x"><valueBoolean value="true"/></extension></birthDate></Patient>`,
			json: `{"resourceType":"Patient","birthDate":"1970-01-01","_birthDate":{"id":"b1","extension":[{"url":"http://example.org/x","valueBoolean":true}]}}`,
		},
		{
			name: "PrimitiveWithOnlyExtension",
			xml:  `<Patient` + ns + `><gender><extension url="http://hl7.org/fhir/StructureDefinition/data-absent-reason"><valueCode value="unknown"/></extension></gender></Patient>`,
			json: `{"resourceType":"Patient","_gender":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/data-absent-reason","valueCode":"unknown"}]}}`,
		},
		{
			name: "RepeatingPrimitiveWithExtensionOnOneItem",
			xml:  `<Patient` + ns + `><name><given value="Alex"/><given id="g2"><extension url="http://example.org/x"><valueString value="y"/></extension></given></name></Patient>`,
			json: `{"resourceType":"Patient","name":[{"given":["Alex",null],"_given":[null,{"id":"g2","extension":[{"url":"http://example.org/x","valueString":"y"}]}]}]}`,
		},
		{
			name: "RepeatingElementWithOneItemIsAnArray",
			xml:  `<Patient` + ns + `><identifier><value value="9434765919"/></identifier><name><family value="Smith"/></name></Patient>`,
			json: `{"resourceType":"Patient","identifier":[{"value":"9434765919"}],"name":[{"family":"Smith"}]}`,
		},
		{
			name: "ComplexElementID",
			xml:  `<Patient` + ns + `><name id="n1"><family value="Smith"/></name></Patient>`,
			json: `{"resourceType":"Patient","name":[{"id":"n1","family":"Smith"}]}`,
		},
		{
			name: "ChoiceTypesAndDecimalPrecision",
			xml:  `<Observation` + ns + `><status value="final"/><code><text value="t"/></code><effectiveDateTime value="2024-01-02"/><valueQuantity><value value="1.50"/><unit value="mmol/L"/></valueQuantity><component><code><text value="c"/></code><valueInteger value="-3"/></component></Observation>`,
			json: `{"resourceType":"Observation","status":"final","code":{"text":"t"},"effectiveDateTime":"2024-01-02","valueQuantity":{"value":1.50,"unit":"mmol/L"},"component":[{"code":{"text":"c"},"valueInteger":-3}]}`,
		},
		{
			name: "DecimalExponentAndTrailingZeros",
			xml:  `<Observation` + ns + `><status value="final"/><code><text value="t"/></code><valueQuantity><value value="1.000e-3"/></valueQuantity></Observation>`,
			json: `{"resourceType":"Observation","status":"final","code":{"text":"t"},"valueQuantity":{"value":1.000e-3}}`,
		},
		{
			name:  "BooleanAndReservedChoiceName",
			xml:   `<Patient` + ns + `><extension url="http://example.org/s"><valueString value="a &amp; &lt;b&gt; &quot;c&quot;"/></extension><active value="false"/></Patient>`,
			json:  `{"resourceType":"Patient","extension":[{"url":"http://example.org/s","valueString":"a & <b> \"c\""}],"active":false}`,
			canon: `<Patient` + ns + `><extension url="http://example.org/s"><valueString value="a &amp; &lt;b&gt; &quot;c&quot;"/></extension><active value="false"/></Patient>`,
		},
		{
			name: "NewlinesInValues",
			xml:  `<Patient` + ns + `><name><text value="line1&#xA;line2&#x9;tab"/></name></Patient>`,
			json: `{"resourceType":"Patient","name":[{"text":"line1\nline2\ttab"}]}`,
		},
		{
			name: "NestedExtensions",
			xml:  `<Patient` + ns + `><extension url="http://example.org/outer"><extension url="inner"><valueCoding><system value="http://snomed.info/sct"/><code value="1"/></valueCoding></extension></extension></Patient>`,
			json: `{"resourceType":"Patient","extension":[{"url":"http://example.org/outer","extension":[{"url":"inner","valueCoding":{"system":"http://snomed.info/sct","code":"1"}}]}]}`,
		},
		{
			name: "ReferenceBeforeType",
			xml:  `<Task` + ns + `><status value="requested"/><intent value="order"/><for><reference value="Patient/1"/><type value="Patient"/><display value="P"/></for></Task>`,
			json: `{"resourceType":"Task","status":"requested","intent":"order","for":{"reference":"Patient/1","type":"Patient","display":"P"}}`,
		},
		{
			name:  "ElementsOutOfOrderAreAcceptedAndWrittenInOrder",
			xml:   `<Task` + ns + `><intent value="order"/><id value="t1"/><status value="requested"/></Task>`,
			json:  `{"resourceType":"Task","id":"t1","status":"requested","intent":"order"}`,
			canon: `<Task` + ns + `><id value="t1"/><status value="requested"/><intent value="order"/></Task>`,
		},
		{
			name: "ContainedResource",
			xml: `<ServiceRequest` + ns + `><contained><Patient><id value="p"/><gender value="female"/></Patient></contained>` +
				`<status value="active"/><intent value="order"/><subject><reference value="#p"/></subject></ServiceRequest>`,
			json: `{"resourceType":"ServiceRequest","contained":[{"resourceType":"Patient","id":"p","gender":"female"}],"status":"active","intent":"order","subject":{"reference":"#p"}}`,
		},
		{
			name: "BundleEntryResource",
			xml: `<Bundle` + ns + `><type value="collection"/><entry><fullUrl value="urn:uuid:1"/><resource><Patient><active value="true"/></Patient></resource></entry>` +
				`<entry><resource><Practitioner><name><family value="Who"/></name></Practitioner></resource></entry></Bundle>`,
			json: `{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient","active":true}},{"resource":{"resourceType":"Practitioner","name":[{"family":"Who"}]}}]}`,
		},
		{
			name: "ParametersResource",
			xml:  `<Parameters` + ns + `><parameter><name value="p"/><resource><Patient><active value="true"/></Patient></resource></parameter></Parameters>`,
			json: `{"resourceType":"Parameters","parameter":[{"name":"p","resource":{"resourceType":"Patient","active":true}}]}`,
		},
		{
			name: "NarrativeDivVerbatim",
			xml:  `<Patient` + ns + `><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p class="x">A &amp; B &lt; C<br/></p><!-- note --></div></text></Patient>`,
			json: `{"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><p class=\"x\">A &amp; B &lt; C<br/></p><!-- note --></div>"}}`,
		},
		{
			name:  "NarrativeDivWithPrefixIsCanonicalised",
			xml:   `<Patient` + ns + ` xmlns:h="http://www.w3.org/1999/xhtml"><text><status value="generated"/><h:div><h:p xml:lang="en">Hi</h:p></h:div></text></Patient>`,
			json:  `{"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><p xml:lang=\"en\">Hi</p></div>"}}`,
			canon: `<Patient` + ns + `><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p xml:lang="en">Hi</p></div></text></Patient>`,
		},
		{
			name:  "CommentsAndWhitespaceAreDropped",
			xml:   "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- c -->\n<Patient" + ns + ">\n  <!-- c -->\n  <active value=\"true\"/>\n</Patient>\n",
			json:  `{"resourceType":"Patient","active":true}`,
			canon: `<Patient` + ns + `><active value="true"/></Patient>`,
		},
		{
			name:  "EmptyResource",
			xml:   `<Patient` + ns + `/>`,
			json:  `{"resourceType":"Patient"}`,
			canon: `<Patient` + ns + `></Patient>`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			j, err := fhirxml.ToJSON([]byte(tt.xml))
			if err != nil {
				t.Fatalf("ToJSON: %v", err)
			}
			if string(j) != tt.json {
				t.Errorf("ToJSON:\n got %s\nwant %s", j, tt.json)
			}
			x, err := fhirxml.FromJSON([]byte(tt.json))
			if err != nil {
				t.Fatalf("FromJSON: %v", err)
			}
			canon := tt.canon
			if canon == "" {
				canon = tt.xml
			}
			if want := `<?xml version="1.0" encoding="UTF-8"?>` + canon; string(x) != want {
				t.Errorf("FromJSON:\n got %s\nwant %s", x, want)
			}
			j2, err := fhirxml.ToJSON(x)
			if err != nil {
				t.Fatalf("ToJSON(FromJSON): %v", err)
			}
			if string(j2) != tt.json {
				t.Errorf("ToJSON(FromJSON):\n got %s\nwant %s", j2, tt.json)
			}
		})
	}
}

// wantAppError checks that err is a *linkbridge.Error with code and a
// message containing msg, located at expr ("" for no expression).
func wantAppError(t *testing.T, err error, code, msg, expr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want %s error %q", code, msg)
	}
	var ae *linkbridge.Error
	if !errors.As(err, &ae) {
		t.Fatalf("err = %T %v, want *linkbridge.Error", err, err)
	}
	if ae.Code != code || !strings.Contains(ae.Message, msg) {
		t.Errorf("err = %s %q, want %s containing %q", ae.Code, ae.Message, code, msg)
	}
	var got string
	if len(ae.Expression) > 0 {
		got = ae.Expression[0]
	}
	if got != expr {
		t.Errorf("expression = %q, want %q", got, expr)
	}
}

func TestToJSONRejects(t *testing.T) {
	t.Parallel()
	deep := `<Patient` + ns + `>` + strings.Repeat(`<extension url="http://x">`, 130) + strings.Repeat(`</extension>`, 130) + `</Patient>`
	tests := []struct {
		name, xml, msg, expr string
	}{
		{"Empty", ``, "no XML element", ""},
		{"NotXML", `{"resourceType":"Patient"}`, "text outside the root element", ""},
		{"NotWellFormed", `<Patient` + ns + `><active value="true"></Patient>`, "not well-formed", "Patient.active"},
		{"Truncated", `<Patient` + ns + `><active value="true"/>`, "not well-formed", "Patient"},
		{"NoNamespace", `<Patient><active value="true"/></Patient>`, "not in the FHIR namespace", "Patient"},
		{"WrongNamespace", `<Patient xmlns="http://hl7.org/fhir/v3"/>`, "not in the FHIR namespace", "Patient"},
		{"ChildInWrongNamespace", `<Patient` + ns + `><x:active xmlns:x="urn:x" value="true"/></Patient>`, "not in the FHIR namespace", "Patient.active"},
		{"UnknownResourceType", `<Nope` + ns + `/>`, "unknown FHIR R4 resource type", ""},
		{"STU3OnlyResourceType", `<ReferralRequest` + ns + `/>`, "unknown FHIR R4 resource type", ""},
		{"UnknownElement", `<Patient` + ns + `><foo value="x"/></Patient>`, "unknown element", "Patient.foo"},
		{"UnknownNestedElement", `<Patient` + ns + `><name><familyName value="x"/></name></Patient>`, "unknown element", "Patient.name[0].familyName"},
		{"UpperCaseElement", `<Patient` + ns + `><Active value="true"/></Patient>`, "unknown element", "Patient.Active"},
		{"UnknownChoiceType", `<Observation` + ns + `><valueFoo value="x"/></Observation>`, "unknown element", "Observation.valueFoo"},
		{"DOCTYPE", `<!DOCTYPE Patient><Patient` + ns + `/>`, "DOCTYPE", ""},
		{"XXE", `<?xml version="1.0"?><!DOCTYPE Patient [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Patient` + ns + `><id value="&xxe;"/></Patient>`, "DOCTYPE", ""},
		{"UndeclaredEntity", `<Patient` + ns + `><id value="&xxe;"/></Patient>`, "not well-formed", "Patient"},
		{"ProcessingInstruction", `<Patient` + ns + `><?php x?></Patient>`, "processing instructions", "Patient"},
		{"NonUTF8Encoding", `<?xml version="1.0" encoding="ISO-8859-1"?><Patient` + ns + `/>`, "UTF-8", ""},
		{"TextInComplexElement", `<Patient` + ns + `><name>Smith</name></Patient>`, "text content is not allowed", "Patient.name[0]"},
		{"TextInPrimitive", `<Patient` + ns + `><gender value="male">male</gender></Patient>`, "text content is not allowed", "Patient.gender"},
		{"TextInResource", `<Patient` + ns + `>hello</Patient>`, "text content is not allowed", "Patient"},
		{"TwoRoots", `<Patient` + ns + `/><Patient` + ns + `/>`, "more than one root", ""},
		{"SingletonRepeated", `<Patient` + ns + `><gender value="male"/><gender value="female"/></Patient>`, "at most once", "Patient.gender"},
		{"TwoChoiceTypes", `<Observation` + ns + `><valueString value="a"/><valueBoolean value="true"/></Observation>`, "more than one type", "Observation.valueBoolean"},
		{"BadBoolean", `<Patient` + ns + `><active value="yes"/></Patient>`, "expected a boolean", "Patient.active"},
		{"BadInteger", `<Observation` + ns + `><valueInteger value="1.5"/></Observation>`, "expected an integer", "Observation.valueInteger"},
		{"PlusInteger", `<Patient` + ns + `><multipleBirthInteger value="+2"/></Patient>`, "expected an integer", "Patient.multipleBirthInteger"},
		{"BadDecimal", `<Observation` + ns + `><valueQuantity><value value="1,5"/></valueQuantity></Observation>`, "expected a decimal", "Observation.valueQuantity.value"},
		{"EmptyValue", `<Patient` + ns + `><gender value=""/></Patient>`, "value attribute is empty", "Patient.gender"},
		{"EmptyID", `<Patient` + ns + `><name id=""><family value="x"/></name></Patient>`, "id attribute is empty", "Patient.name[0]"},
		{"EmptyURL", `<Patient` + ns + `><extension url=""><valueBoolean value="true"/></extension></Patient>`, "url attribute is empty", "Patient.extension[0]"},
		{"PrimitiveWithNothing", `<Patient` + ns + `><gender/></Patient>`, "no value attribute and no extension", "Patient.gender"},
		{"EmptyComplex", `<Patient` + ns + `><maritalStatus/></Patient>`, "no content", "Patient.maritalStatus"},
		{"UnknownAttribute", `<Patient` + ns + `><gender value="male" foo="x"/></Patient>`, `attribute "foo" is not allowed`, "Patient.gender"},
		{"NamespacedAttribute", `<Patient` + ns + ` xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="x"/>`, "attribute not allowed", "Patient"},
		{"IDAttributeOnResource", `<Patient` + ns + ` id="p"/>`, `attribute "id" is not allowed`, "Patient"},
		{"IDElementOnDatatype", `<Patient` + ns + `><name><id value="n"/></name></Patient>`, "must be an XML attribute", "Patient.name[0].id"},
		{"URLElementOnExtension", `<Patient` + ns + `><extension><url value="http://x"/></extension></Patient>`, "must be an XML attribute", "Patient.extension[0].url"},
		{"ExtensionOnlyInPrimitive", `<Patient` + ns + `><gender value="male"><coding/></gender></Patient>`, "holds only extension", "Patient.gender.coding"},
		{"ContainedEmpty", `<ServiceRequest` + ns + `><contained/></ServiceRequest>`, "holds no resource", "ServiceRequest.contained[0]"},
		{"ContainedTwo", `<ServiceRequest` + ns + `><contained><Patient/><Patient/></contained></ServiceRequest>`, "more than one resource", "ServiceRequest.contained[0]"},
		{"ContainedUnknownType", `<ServiceRequest` + ns + `><contained><Nope/></contained></ServiceRequest>`, "unknown FHIR R4 resource type", "ServiceRequest.contained[0]"},
		{"DivNotXHTML", `<Patient` + ns + `><text><status value="generated"/><div>plain</div></text></Patient>`, "XHTML div", "Patient.text.div"},
		{"DivWithForeignElement", `<Patient` + ns + `><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><s:script xmlns:s="urn:s"/></div></text></Patient>`, "not XHTML", "Patient.text.div"},
		{"DivWithForeignAttribute", `<Patient` + ns + `><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml" xmlns:s="urn:s" s:x="1"/></text></Patient>`, "namespace other than xml", "Patient.text.div"},
		{"TooDeep", deep, "deeper than 128", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			j, err := fhirxml.ToJSON([]byte(tt.xml))
			if err == nil {
				t.Fatalf("ToJSON = %s, want error", j)
			}
			expr := tt.expr
			if tt.name == "TooDeep" {
				var ae *linkbridge.Error
				if errors.As(err, &ae) && len(ae.Expression) == 1 && strings.HasPrefix(ae.Expression[0], "Patient.extension[0].extension[0]") {
					expr = ae.Expression[0]
				}
			}
			wantAppError(t, err, linkbridge.EINVALID, tt.msg, expr)
		})
	}
}

func TestTooLarge(t *testing.T) {
	t.Parallel()
	big := make([]byte, fhirxml.MaxBytes+1)
	for i := range big {
		big[i] = ' '
	}
	_, err := fhirxml.ToJSON(big)
	wantAppError(t, err, linkbridge.ETOOLARGE, "over the", "")
	_, err = fhirxml.FromJSON(big)
	wantAppError(t, err, linkbridge.ETOOLARGE, "over the", "")
}

func TestFromJSONRejects(t *testing.T) {
	t.Parallel()
	deep := `{"resourceType":"Patient",` + strings.Repeat(`"extension":[{"url":"http://x",`, 130) + `"valueBoolean":true` + strings.Repeat(`}]`, 130) + `}`
	tests := []struct {
		name, json, msg, expr string
	}{
		{"Empty", ``, "invalid JSON", ""},
		{"NotObject", `[]`, "not a JSON object", ""},
		{"TrailingData", `{"resourceType":"Patient"} {}`, "data after", ""},
		{"NoResourceType", `{"id":"x"}`, "resourceType", ""},
		{"UnknownResourceType", `{"resourceType":"Nope"}`, "unknown FHIR R4 resource type", ""},
		{"UnknownElement", `{"resourceType":"Patient","foo":1}`, "unknown element", "Patient.foo"},
		{"UpperCaseElement", `{"resourceType":"Patient","Active":true}`, "unknown element", "Patient.Active"},
		{"TwinOnComplex", `{"resourceType":"Patient","_name":[{"id":"x"}]}`, "only primitive elements", "Patient._name"},
		{"ArrayForSingleton", `{"resourceType":"Patient","gender":["male"]}`, "found an array", "Patient.gender"},
		{"ObjectForArray", `{"resourceType":"ServiceRequest","basedOn":{"reference":"x"}}`, "expected an array", "ServiceRequest.basedOn"},
		{"EmptyArray", `{"resourceType":"Patient","name":[]}`, "empty array", "Patient.name"},
		{"EmptyObject", `{"resourceType":"Patient","maritalStatus":{}}`, "empty object", "Patient.maritalStatus"},
		{"StringForBoolean", `{"resourceType":"Patient","active":"true"}`, "expected a boolean", "Patient.active"},
		{"NumberForString", `{"resourceType":"Patient","gender":1}`, "expected a string", "Patient.gender"},
		{"FractionForInteger", `{"resourceType":"Observation","valueInteger":1.5}`, "expected an integer", "Observation.valueInteger"},
		{"StringForDecimal", `{"resourceType":"Observation","valueQuantity":{"value":"1.5"}}`, "expected a decimal", "Observation.valueQuantity.value"},
		{"EmptyString", `{"resourceType":"Patient","gender":""}`, "empty string", "Patient.gender"},
		{"ControlCharacter", `{"resourceType":"Patient","name":[{"text":"a\u0001b"}]}`, "control character", "Patient.name[0].text"},
		{"NullWithoutTwin", `{"resourceType":"Patient","gender":null}`, "null", "Patient.gender"},
		{"TwinLengthsDiffer", `{"resourceType":"Patient","name":[{"given":["a","b"],"_given":[null]}]}`, "different lengths", "Patient.name[0].given"},
		{"TwinWithOtherKey", `{"resourceType":"Patient","_gender":{"foo":1}}`, "other than id and extension", "Patient.gender"},
		{"TwoChoiceTypes", `{"resourceType":"Observation","valueString":"a","valueBoolean":true}`, "more than one type", "Observation.valueBoolean"},
		{"ContainedNotResource", `{"resourceType":"ServiceRequest","contained":[{"id":"p"}]}`, "resourceType", "ServiceRequest.contained[0]"},
		{"DivNotXML", `{"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">unclosed"}}`, "not well-formed", "Patient.text.div"},
		{"DivWithoutNamespace", `{"resourceType":"Patient","text":{"status":"generated","div":"<div>x</div>"}}`, "XHTML div", "Patient.text.div"},
		{"DivInjection", `{"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div></text><active value=\"true\"/><text><div xmlns=\"http://www.w3.org/1999/xhtml\">y</div>"}}`, "not well-formed", "Patient.text.div"},
		{"DivTwoElements", `{"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div><div xmlns=\"http://www.w3.org/1999/xhtml\">y</div>"}}`, "more than one element", "Patient.text.div"},
		{"DivDOCTYPE", `{"resourceType":"Patient","text":{"status":"generated","div":"<!DOCTYPE div [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><div xmlns=\"http://www.w3.org/1999/xhtml\">&e;</div>"}}`, "DOCTYPE", "Patient.text.div"},
		{"DivXMLDeclaration", `{"resourceType":"Patient","text":{"status":"generated","div":"<?xml version=\"1.0\"?><div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"}}`, "processing instructions", "Patient.text.div"},
		{"TooDeep", deep, "deeper than 128", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			x, err := fhirxml.FromJSON([]byte(tt.json))
			if err == nil {
				t.Fatalf("FromJSON = %s, want error", x)
			}
			expr := tt.expr
			if tt.name == "TooDeep" {
				var ae *linkbridge.Error
				if errors.As(err, &ae) && len(ae.Expression) == 1 && strings.HasPrefix(ae.Expression[0], "Patient.extension[0].extension[0]") {
					expr = ae.Expression[0]
				}
			}
			wantAppError(t, err, linkbridge.EINVALID, tt.msg, expr)
		})
	}
}

// TestCodec: Decode's validation errors are fhirjson's; Encode renders
// what Decode reads.
func TestCodec(t *testing.T) {
	t.Parallel()
	_, xc := newCodecs(t)

	// Converts, but google/fhir requires Task.status.
	_, err := xc.Decode([]byte(`<Task` + ns + `><intent value="order"/></Task>`))
	var ire *fhirjson.InvalidResourceError
	if !errors.As(err, &ire) {
		t.Fatalf("Decode(Task without status) = %v, want *fhirjson.InvalidResourceError", err)
	}
	if linkbridge.ErrorCode(err) != linkbridge.EINVALID {
		t.Errorf("ErrorCode = %s, want EINVALID", linkbridge.ErrorCode(err))
	}

	// Converts, but the date is not a date: fhirjson's structural error.
	_, err = xc.Decode([]byte(`<Patient` + ns + `><birthDate value="1980-13-45"/></Patient>`))
	wantAppError(t, err, linkbridge.EINVALID, "expected date", "Patient.birthDate")

	// Not FHIR XML: fhirxml's own error.
	_, err = xc.Decode([]byte(`<Patient` + ns + `><foo value="x"/></Patient>`))
	wantAppError(t, err, linkbridge.EINVALID, "unknown element", "Patient.foo")

	cr, err := xc.Decode([]byte(`<Patient` + ns + `><id value="p1"/><birthDate value="1956-03-14"/></Patient>`))
	if err != nil {
		t.Fatal(err)
	}
	x, err := xc.Encode(cr)
	if err != nil {
		t.Fatal(err)
	}
	if want := `<?xml version="1.0" encoding="UTF-8"?><Patient` + ns + `><id value="p1"/><birthDate value="1956-03-14"/></Patient>`; string(x) != want {
		t.Errorf("Encode = %s, want %s", x, want)
	}
	if _, err := xc.Encode(fhirjson.Resource(cr)); err != nil {
		t.Errorf("Encode(bare Patient) = %v", err)
	}
	if _, err := xc.Encode(nil); linkbridge.ErrorCode(err) != linkbridge.EINTERNAL {
		t.Errorf("Encode(nil) = %v, want an internal error", err)
	}
}

// TestSTU3: the same code, driven by the STU3 descriptors, knows STU3's
// resources (ReferralRequest, gone in R4) and choice types.
func TestSTU3(t *testing.T) {
	t.Parallel()
	c, err := fhirxml.NewConverter(fhirversion.STU3)
	if err != nil {
		t.Fatal(err)
	}
	x := `<ReferralRequest` + ns + `><status value="active"/><intent value="order"/><subject><reference value="Patient/1"/><display value="P"/></subject><occurrenceDateTime value="2018-01-01"/></ReferralRequest>`
	want := `{"resourceType":"ReferralRequest","status":"active","intent":"order","subject":{"reference":"Patient/1","display":"P"},"occurrenceDateTime":"2018-01-01"}`
	j, err := c.ToJSON([]byte(x))
	if err != nil {
		t.Fatal(err)
	}
	if string(j) != want {
		t.Errorf("ToJSON = %s, want %s", j, want)
	}
	back, err := c.FromJSON(j)
	if err != nil {
		t.Fatal(err)
	}
	if string(back) != `<?xml version="1.0" encoding="UTF-8"?>`+x {
		t.Errorf("FromJSON = %s, want %s", back, x)
	}
	_, err = c.ToJSON([]byte(`<ServiceRequest` + ns + `/>`))
	wantAppError(t, err, linkbridge.EINVALID, "unknown FHIR STU3 resource type", "")

	if _, err := fhirxml.NewConverter(fhirversion.Version("R5")); err == nil {
		t.Error("NewConverter(R5) = nil error, want unsupported")
	}
}
