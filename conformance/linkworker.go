package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Link worker steps the receiver scenarios need.
const (
	stepAccept   = "accept"
	stepDecline  = "decline"
	stepContact  = "contact"
	stepHold     = "hold"
	stepResume   = "resume"
	stepComplete = "complete"
)

// stepStatus is the Task status each step leads to.
var stepStatus = map[string]string{
	stepAccept: "accepted", stepDecline: "rejected", stepContact: "in-progress",
	stepHold: "on-hold", stepResume: "in-progress", stepComplete: "completed",
}

// linkWorker performs a link worker's step on the target.
type linkWorker interface {
	describe() string
	perform(t *T, r *referral, step string)
}

// linkWorker picks how link worker steps are done: linkbridge's /sp/v1 API
// when the target offers it (and Manual is off), else prompts.
func (k *kit) linkWorker(ctx context.Context) linkWorker {
	if !k.cfg.Manual {
		base := k.cfg.SPBase
		if base == "" {
			base = strings.TrimSuffix(k.cfg.Target, "/fhir") + "/sp/v1"
		}
		base = strings.TrimSuffix(base, "/")
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/openapi.json", nil)
		if err == nil {
			for name, vals := range k.roleHeader(true) {
				for _, v := range vals {
					req.Header.Add(name, v)
				}
			}
			if resp, err := k.cfg.Client.Do(req); err == nil {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
				_ = resp.Body.Close()
				var doc struct {
					OpenAPI string `json:"openapi"`
				}
				if resp.StatusCode == http.StatusOK && json.Unmarshal(b, &doc) == nil && doc.OpenAPI != "" {
					return &spAPI{base: base}
				}
			}
		}
	}
	return &manual{}
}

// spAPI drives linkbridge's link worker API.
type spAPI struct{ base string }

func (s *spAPI) describe() string { return "driven through linkbridge's link worker API at " + s.base }

func (s *spAPI) perform(t *T, r *referral, step string) {
	var path string
	var body any
	switch step {
	case stepAccept:
		path, body = "/actions", map[string]any{"action": "accept", "linkWorker": map[string]any{"id": "lw-conformance", "name": "Conformance Link Worker"}}
	case stepDecline:
		path, body = "/actions", map[string]any{"action": "decline", "reasonCode": "person-declined", "reason": "Prefers to wait"}
	case stepContact:
		path, body = "/contacts", map[string]any{"at": t.kit.cfg.Now().UTC().Format(time.RFC3339), "mode": "phone", "minutes": 30, "attended": true}
	case stepHold:
		path, body = "/actions", map[string]any{"action": "hold", "reason": "In hospital"}
	case stepResume:
		path, body = "/actions", map[string]any{"action": "resume"}
	case stepComplete:
		path, body = "/actions", map[string]any{"action": "complete", "reasonCode": "goals-met", "summary": "Joined a walking group"}
	default:
		t.Fatalf("kit error: unknown link worker step %q", step)
	}
	b, _ := json.Marshal(body)
	resp := t.Do(Request{Method: http.MethodPost, URL: s.base + "/referrals/" + r.SRID + path, Body: b, JSONAPI: true, AsService: true})
	if resp.Status != http.StatusOK && resp.Status != http.StatusCreated {
		t.Fatalf("link worker step %s through %s: HTTP %d", step, s.base, resp.Status)
	}
	t.Step("link worker: %s", step)
}

// manual asks a person to do the step on the target and waits for the
// referral Task to show it.
type manual struct{}

func (manual) describe() string {
	return "done by a person on the target (the kit prompts and waits for the Task to change)"
}

func (manual) perform(t *T, r *referral, step string) {
	k := t.kit
	want := stepStatus[step]
	verb := map[string]string{stepAccept: "ACCEPT", stepDecline: "DECLINE (reject)", stepContact: "record an attended CONTACT with the person for",
		stepHold: "put ON HOLD", stepResume: "RESUME", stepComplete: "COMPLETE (discharge)"}[step]
	if k.cfg.Prompt != nil {
		_, _ = fmt.Fprintf(k.cfg.Prompt, "\n  >>> ACTION NEEDED on the target system: %s the referral %s|%s (NHS number %s, Task %s).\n  >>> Waiting up to %s for the Task status to become %q ...\n",
			verb, ReferralSystem, r.Ref, r.NHS, r.TaskID, k.cfg.ManualTimeout, want) // best effort (see Config.Prompt)
	}
	deadline := time.Now().Add(k.cfg.ManualTimeout)
	for {
		task := t.Do(Request{Method: http.MethodGet, URL: "Task/" + r.TaskID})
		if task.Status == http.StatusOK && task.Doc.Str("status") == want {
			t.Step("link worker (manual): %s", step)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for a person to %s the referral (Task %s is %q, want %q)", k.cfg.ManualTimeout, strings.ToLower(verb), r.TaskID, task.Doc.Str("status"), want)
		}
		select {
		case <-t.ctx.Done():
			t.Fatalf("cancelled while waiting for a manual step")
		case <-time.After(k.cfg.PollInterval):
		}
	}
}
