package conformance

import (
	"crypto/rand"
	"embed"
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"strings"

	"github.com/google/uuid"

	"github.com/linkbridge/linkbridge"
)

// The referrals the kit sends are the project's FHIR fixtures with
// placeholders: {{NHS}} (a fresh valid NHS number), {{REF}} (a fresh
// referral identifier), {{SERVICE}} (the service's ODS code), {{UUID1}},
// {{UUID2}} (fresh message ids).
//
//go:embed testdata/*.json
var fixtureFS embed.FS

// ReferralSystem is the identifier system of the referrals the kit sends.
const ReferralSystem = "https://fhir.example-gp.nhs.uk/Id/referral"

// NHSNumberSystem is the NHS number identifier system.
const NHSNumberSystem = "https://fhir.nhs.uk/Id/nhs-number"

// ODSSystem is the ODS organisation code system.
const ODSSystem = "https://fhir.nhs.uk/Id/ods-organization-code"

// referral is one referral the kit sent, and what the target made of it.
type referral struct {
	NHS, Ref string
	// TaskID and SRID are the target's ids.
	TaskID, SRID string
}

// fixture personalises a fixture for a new referral.
func (k *kit) fixture(name string, r *referral) []byte {
	b, err := fixtureFS.ReadFile("testdata/" + name)
	if err != nil {
		panic(fmt.Sprintf("fixture %s: %v", name, err))
	}
	return []byte(strings.NewReplacer("{{NHS}}", r.NHS, "{{REF}}", r.Ref, "{{SERVICE}}", k.cfg.ServiceODS, "{{REFERRER}}", k.cfg.ReferrerODS,
		"{{UUID1}}", uuid.NewString(), "{{UUID2}}", uuid.NewString()).Replace(string(b)))
}

// newReferral allocates fresh identifiers.
func (k *kit) newReferral() *referral {
	k.seq++
	return &referral{NHS: NewNHSNumber(), Ref: fmt.Sprintf("conform-%s-%d", k.runID, k.seq)}
}

// NewNHSNumber returns a random NHS number in the 999 test range that
// passes the Modulus 11 check.
func NewNHSNumber() string {
	for {
		d := make([]int, 9)
		d[0], d[1], d[2] = 9, 9, 9
		for i := 3; i < 9; i++ {
			n, _ := rand.Int(rand.Reader, big.NewInt(10))
			d[i] = int(n.Int64())
		}
		var b strings.Builder
		for _, v := range d {
			b.WriteByte(byte('0' + v))
		}
		check, ok := linkbridge.NHSCheckDigit(b.String())
		if !ok {
			continue
		}
		b.WriteByte(byte('0' + check))
		return b.String()
	}
}

// mutate decodes a JSON fixture, changes it, and encodes it again.
func mutate(b []byte, fn func(doc map[string]any)) []byte {
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		panic(err)
	}
	fn(doc)
	out, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return out
}

// contained returns the contained resource with an id.
func contained(doc map[string]any, id string) map[string]any {
	list, _ := doc["contained"].([]any)
	for _, c := range list {
		if m, ok := c.(map[string]any); ok && m["id"] == id {
			return m
		}
	}
	return nil
}

var locationRe = regexp.MustCompile(`(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/(\d+))?$`)

// parseLocation reads Type, id and version from a Location.
func parseLocation(loc string) (typ, id, version string) {
	m := locationRe.FindStringSubmatch(loc)
	if m == nil {
		return "", "", ""
	}
	return m[1], m[2], m[3]
}

// refID returns the id of a literal reference "Type/id" (or absolute URL).
func refID(ref J, typ string) string {
	s := ref.Str("reference")
	if i := strings.LastIndex(s, typ+"/"); i >= 0 {
		return strings.SplitN(s[i+len(typ)+1:], "/", 2)[0]
	}
	return ""
}

// TransactionReferral returns the kit's GP referral as a FHIR transaction
// Bundle (Patient, ServiceRequest, Task) for a person with the NHS number,
// from the GP practice A81001, with referrer identifier ref (system
// ReferralSystem), addressed to the
// social prescribing service with ODS code serviceODS.
func TransactionReferral(nhs, ref, serviceODS string) []byte {
	k := &kit{cfg: Config{ServiceODS: serviceODS, ReferrerODS: "A81001"}}
	return k.fixture("transaction.json", &referral{NHS: nhs, Ref: ref})
}
