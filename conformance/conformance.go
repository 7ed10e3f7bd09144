// Package conformance is linkbridge's conformance kit for closed-loop social
// prescribing referrals over FHIR R4. It speaks to its target only over
// HTTP, so it can certify any system, not just linkbridge:
//
//   - RoleReceiver: the target receives referrals (linkbridge, or another
//     social prescribing system). The kit plays the GP system and runs the
//     scenarios of docs/conformance.md that apply. Steps that need a link
//     worker drive linkbridge's /sp/v1 API when the target offers it, and
//     otherwise prompt a person and wait for the target's Task to change.
//   - RoleGPEndpoint: the target is the GP-side FHIR server that receives
//     write-backs. The kit sends every shape linkbridge writes back (built
//     by linkbridge's own mapping code, exactly as the relay sends them) and
//     checks acceptance, idempotency, conditional update, If-Match and
//     read-after-write.
//   - RoleMeshRecipient: the target is a MESH mailbox API with a GP
//     document inbox behind it (GP Connect Send Document). The kit sends
//     the ITK3 messages linkbridge's send-document route sends (built by
//     senddoc, uploaded by adapter/mesh) and checks MESH authentication,
//     delivery (also chunked), replacement, the refusal of invalid
//     payloads with ITK3 code 20009, and the ITK3 acknowledgements it
//     reads back from its own mailbox.
//
// Every resource the target returns is validated with google/fhir (through
// adapter/fhirjson; STU3 acknowledgements through senddoc). Run returns a Report with a result per scenario and the
// request/response that failed; the Report renders as terminal text, JUnit
// XML and JSON.
package conformance

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/fhirmap"
)

// Role is what the target plays.
type Role string

const (
	// RoleReceiver is a system that receives referrals from GP systems.
	RoleReceiver Role = "receiver"
	// RoleGPEndpoint is a GP-side FHIR server that receives write-backs.
	RoleGPEndpoint Role = "gp-endpoint"
	// RoleMeshRecipient is a MESH mailbox API with a GP document inbox
	// behind it, which receives GP Connect Send Document messages.
	RoleMeshRecipient Role = "mesh-recipient"
)

// Config configures a run.
type Config struct {
	// Target is the FHIR base URL, e.g. http://127.0.0.1:8080/fhir; for
	// RoleMeshRecipient, the MESH API base URL (the root under which
	// /messageexchange/... is served).
	Target string
	Role   Role
	// Header is added to every request the kit sends as the referring GP
	// system (e.g. Authorization with a GP client's token), and to every
	// request when SPHeader is nil.
	Header http.Header
	// SPHeader is added instead of Header to the requests the kit sends as
	// the social prescribing service: link worker steps through /sp/v1 and
	// the service's own FHIR calls (polling for new referrals). A secured
	// receiver authorises the two sides as different clients.
	SPHeader http.Header
	// SPBase is the /sp/v1 base of a linkbridge target; empty probes
	// <target root>/sp/v1, and Manual forces prompts instead.
	SPBase string
	Manual bool
	// ManualTimeout bounds the wait for a person's step on the target.
	ManualTimeout time.Duration
	// PollInterval is how often the kit polls while it waits.
	PollInterval time.Duration
	// Run, if set, is a regular expression selecting scenario ids.
	Run string
	// ServiceODS is the ODS code referrals are addressed to (receiver), or
	// the service the kit sends documents as (mesh-recipient); default
	// Y02662.
	ServiceODS string
	// ReferrerODS is the ODS code of the GP practice the kit's referrals
	// come from (receiver; default A81001): on a secured receiver, the
	// organisation of the client whose token Header carries. In the
	// mesh-recipient role, the practice the documents are addressed to.
	ReferrerODS string
	// Progress receives live progress (nil: none); Prompt receives the
	// instructions for manual steps (nil: Progress). Both are best effort:
	// an error writing to them is ignored, the Report is the result.
	Progress, Prompt io.Writer
	// Client is the HTTP client (nil: a client with a 30 s timeout).
	Client *http.Client
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Systems are the URIs of the linkbridge deployment the kit imitates
	// in the gp-endpoint role (its write-back key among them: conform
	// --system-base); the zero value is the default base.
	Systems fhirmap.Systems
	// MESH configures the mesh-recipient role (the client certificate
	// MESH requires goes in Client's transport).
	MESH MESHConfig
}

// Status of a scenario.
type Status string

// Scenario outcomes.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	Skip Status = "skip"
)

// Exchange is one HTTP request and its response, as reported.
type Exchange struct {
	Method          string            `json:"method"`
	URL             string            `json:"url"`
	RequestHeaders  map[string]string `json:"requestHeaders,omitempty"`
	RequestBody     string            `json:"requestBody,omitempty"`
	Status          int               `json:"status"`
	ResponseHeaders map[string]string `json:"responseHeaders,omitempty"`
	ResponseBody    string            `json:"responseBody,omitempty"`
	Error           string            `json:"error,omitempty"`
	DurationMS      float64           `json:"durationMs"`
}

// Result is the outcome of one scenario.
type Result struct {
	ID     string  `json:"id"`
	Name   string  `json:"name"`
	Ref    string  `json:"ref,omitempty"`
	Status Status  `json:"status"`
	Reason string  `json:"reason,omitempty"`
	Secs   float64 `json:"durationSeconds"`
	// Steps are the checks that passed, in order.
	Steps []string `json:"steps,omitempty"`
	// Failed is the exchange the failure is about (nil when none).
	Failed *Exchange `json:"failedExchange,omitempty"`
	// Requests counts the HTTP requests the scenario sent.
	Requests int `json:"requests"`
}

// Report is the outcome of a run.
type Report struct {
	Target   string    `json:"target"`
	Role     Role      `json:"role"`
	Started  time.Time `json:"started"`
	Secs     float64   `json:"durationSeconds"`
	Passed   int       `json:"passed"`
	Failed   int       `json:"failed"`
	Skipped  int       `json:"skipped"`
	LinkWork string    `json:"linkWorkerSteps,omitempty"`
	Results  []Result  `json:"results"`
}

// OK reports whether no scenario failed.
func (r *Report) OK() bool { return r.Failed == 0 }

// Scenario is one conformance scenario.
type Scenario struct {
	ID   string
	Name string
	// Ref points at the requirement (e.g. "docs/conformance.md §8.3").
	Ref string
	Run func(t *T)
}

// Scenarios returns the scenarios of a role, in run order.
func Scenarios(role Role) []Scenario {
	switch role {
	case RoleReceiver:
		return receiverScenarios()
	case RoleGPEndpoint:
		return gpEndpointScenarios()
	case RoleMeshRecipient:
		return meshRecipientScenarios()
	}
	return nil
}

// Run runs the role's scenarios against the target. The error is for a
// run that could not start (bad configuration); scenario failures are in
// the Report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	var sel *regexp.Regexp
	if cfg.Run != "" {
		var err error
		if sel, err = regexp.Compile(cfg.Run); err != nil {
			return nil, fmt.Errorf("conformance: --run: %w", err)
		}
	}
	codec, err := fhirjson.New()
	if err != nil {
		return nil, err
	}
	k := &kit{cfg: cfg, codec: codec, runID: newRunID(cfg.Now())}
	rep := &Report{Target: cfg.Target, Role: cfg.Role, Started: cfg.Now()}
	if cfg.Role == RoleReceiver {
		k.lw = k.linkWorker(ctx)
		rep.LinkWork = k.lw.describe()
	}
	k.progressf("linkbridge conformance kit: %s role against %s\n", cfg.Role, cfg.Target)
	if rep.LinkWork != "" {
		k.progressf("link worker steps: %s\n", rep.LinkWork)
	}
	for _, sc := range Scenarios(cfg.Role) {
		if sel != nil && !sel.MatchString(sc.ID) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		res := k.run(ctx, sc)
		rep.Results = append(rep.Results, res)
		switch res.Status {
		case Pass:
			rep.Passed++
		case Fail:
			rep.Failed++
		case Skip:
			rep.Skipped++
		}
	}
	rep.Secs = cfg.Now().Sub(rep.Started).Seconds()
	k.progressf("\n%d passed, %d failed, %d skipped in %.1fs\n", rep.Passed, rep.Failed, rep.Skipped, rep.Secs)
	return rep, nil
}

func (c *Config) defaults() error {
	c.Target = strings.TrimSuffix(c.Target, "/")
	if c.Role != RoleReceiver && c.Role != RoleGPEndpoint && c.Role != RoleMeshRecipient {
		return fmt.Errorf("conformance: --role must be %s, %s or %s, not %q", RoleReceiver, RoleGPEndpoint, RoleMeshRecipient, c.Role)
	}
	if !strings.HasPrefix(c.Target, "http://") && !strings.HasPrefix(c.Target, "https://") {
		if c.Role == RoleMeshRecipient {
			return fmt.Errorf("conformance: --mesh-url must be the http(s) base URL of the MESH API, not %q", c.Target)
		}
		return fmt.Errorf("conformance: --target must be an http(s) FHIR base URL, not %q", c.Target)
	}
	if c.Role == RoleMeshRecipient {
		if err := c.MESH.defaults(); err != nil {
			return err
		}
		if c.Header.Get("Authorization") != "" {
			return fmt.Errorf("conformance: the mesh-recipient role sends MESH's own Authorization header; Header must not set one")
		}
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.ManualTimeout <= 0 {
		c.ManualTimeout = 10 * time.Minute
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 250 * time.Millisecond
	}
	if c.ServiceODS == "" {
		c.ServiceODS = "Y02662"
	}
	if c.ReferrerODS == "" {
		c.ReferrerODS = "A81001"
	}
	if c.Prompt == nil {
		c.Prompt = c.Progress
	}
	return nil
}

// kit is one run's shared state.
type kit struct {
	cfg   Config
	codec *fhirjson.Codec
	runID string
	lw    linkWorker
	seq   int
	gpst  *gpState
	mst   *meshState
}

// roleHeader is the header set of a request sent as the service
// (asService) or as the referring GP system.
func (k *kit) roleHeader(asService bool) http.Header {
	if asService && k.cfg.SPHeader != nil {
		return k.cfg.SPHeader
	}
	return k.cfg.Header
}

func (k *kit) progressf(format string, args ...any) {
	if k.cfg.Progress != nil {
		_, _ = fmt.Fprintf(k.cfg.Progress, format, args...) // best effort (see Config.Progress)
	}
}

// failure stops a scenario (raised by T.Fatalf and T.Skipf).
type failure struct {
	status Status
	reason string
}

// run runs one scenario and turns its outcome into a Result.
func (k *kit) run(ctx context.Context, sc Scenario) (res Result) {
	t := &T{kit: k, ctx: ctx, id: sc.ID}
	start := k.cfg.Now()
	k.progressf("%-28s %s ... ", sc.ID, sc.Name)
	res = Result{ID: sc.ID, Name: sc.Name, Ref: sc.Ref, Status: Pass}
	func() {
		defer func() {
			if p := recover(); p != nil {
				f, ok := p.(failure)
				if !ok {
					f = failure{Fail, fmt.Sprintf("kit error: %v\n%s", p, debug.Stack())}
				}
				res.Status, res.Reason = f.status, f.reason
				if f.status == Fail {
					res.Failed = t.last
				}
			}
		}()
		sc.Run(t)
	}()
	res.Steps, res.Requests = t.steps, t.requests
	res.Secs = k.cfg.Now().Sub(start).Seconds()
	switch res.Status {
	case Pass:
		k.progressf("PASS (%.2fs)\n", res.Secs)
	case Skip:
		k.progressf("SKIP: %s\n", res.Reason)
	case Fail:
		k.progressf("FAIL (%.2fs)\n    reason: %s\n", res.Secs, res.Reason)
		if res.Failed != nil {
			k.progressf("%s", indent(formatExchange(res.Failed), "    "))
		}
	}
	return res
}

// T is a running scenario: it sends requests, records checks and stops the
// scenario on the first failure.
type T struct {
	kit      *kit
	ctx      context.Context
	id       string
	steps    []string
	last     *Exchange
	requests int
}

// Fatalf fails the scenario with a reason; the last exchange is reported.
func (t *T) Fatalf(format string, args ...any) {
	panic(failure{Fail, fmt.Sprintf(format, args...)})
}

// Skipf skips the scenario with a reason.
func (t *T) Skipf(format string, args ...any) {
	panic(failure{Skip, fmt.Sprintf(format, args...)})
}

// Step records a check that passed.
func (t *T) Step(format string, args ...any) {
	t.steps = append(t.steps, fmt.Sprintf(format, args...))
}

// Check fails the scenario unless ok.
func (t *T) Check(ok bool, format string, args ...any) {
	if !ok {
		t.Fatalf(format, args...)
	}
	t.Step(format, args...)
}

// newRunID makes ids of this run unique, so runs against a persistent
// target never collide.
func newRunID(now time.Time) string {
	return fmt.Sprintf("%x", now.UnixNano())[4:]
}

func indent(s, pre string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = pre + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}
