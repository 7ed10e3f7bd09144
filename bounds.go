package linkbridge

import (
	"fmt"
	"unicode/utf8"
)

// Bounds on what one request may carry: sized well above real referrals
// and care plans (a plan holds a handful of goals; a referral Bundle a
// Patient, a ServiceRequest, a Task and a few supporting resources), low
// enough that one request cannot make every later change of its referral
// expensive. Over a bound the request is refused with EUNPROCESSABLE (or
// ETOOLARGE for a Bundle) naming the element; nothing is stored.
const (
	// DefaultMaxReferralEntries is the default cap on the entries of one
	// referral Bundle (transaction or message), contained resources
	// included; the gateway's --max-bundle-entries sets it.
	DefaultMaxReferralEntries = 100
	// MaxPlanItems caps each list of a care plan: needs, risks, goals,
	// actions, onward referrals and signposts.
	MaxPlanItems = 50
	// MaxTextLength caps a free-text field (a note, a summary, what
	// matters to the person), in characters.
	MaxTextLength = 10_000
)

// checkText returns EUNPROCESSABLE at path when s is longer than
// MaxTextLength characters.
func checkText(path, s string) error {
	if len(s) > MaxTextLength && utf8.RuneCountInString(s) > MaxTextLength {
		return Errorf(EUNPROCESSABLE, "%s is longer than %d characters", path, MaxTextLength).At(path)
	}
	return nil
}

// checkCount returns EUNPROCESSABLE at path when n is over MaxPlanItems.
func checkCount(path string, n int) error {
	if n > MaxPlanItems {
		return Errorf(EUNPROCESSABLE, "a plan holds at most %d %s, not %d", MaxPlanItems, path, n).At(path)
	}
	return nil
}

// checkBounds applies the bounds to a plan before its contents are checked.
func (p *Plan) checkBounds() error {
	for _, c := range []struct {
		path string
		n    int
	}{{"needs", len(p.Needs)}, {"risks", len(p.Risks)}, {"goals", len(p.Goals)}, {"actions", len(p.Actions)},
		{"onwardReferrals", len(p.OnwardReferrals)}, {"signposts", len(p.Signposts)}} {
		if err := checkCount(c.path, c.n); err != nil {
			return err
		}
	}
	texts := []struct{ path, s string }{{"whatMatters", p.WhatMatters}}
	for i, n := range p.Needs {
		texts = append(texts, struct{ path, s string }{fmt.Sprintf("needs[%d].text", i), n.Text})
	}
	for i, r := range p.Risks {
		texts = append(texts, struct{ path, s string }{fmt.Sprintf("risks[%d]", i), r})
	}
	for i, g := range p.Goals {
		texts = append(texts, struct{ path, s string }{fmt.Sprintf("goals[%d].description", i), g.Description})
	}
	for i, a := range p.Actions {
		texts = append(texts, struct{ path, s string }{fmt.Sprintf("actions[%d].description", i), a.Description},
			struct{ path, s string }{fmt.Sprintf("actions[%d].who", i), a.Who})
	}
	for i, o := range p.OnwardReferrals {
		texts = append(texts, struct{ path, s string }{fmt.Sprintf("onwardReferrals[%d].service", i), o.Service},
			struct{ path, s string }{fmt.Sprintf("onwardReferrals[%d].reason", i), o.Reason})
	}
	for i, s := range p.Signposts {
		texts = append(texts, struct{ path, s string }{fmt.Sprintf("signposts[%d].to", i), s.To},
			struct{ path, s string }{fmt.Sprintf("signposts[%d].reason", i), s.Reason})
	}
	for _, t := range texts {
		if err := checkText(t.path, t.s); err != nil {
			return err
		}
	}
	return nil
}

// linkWorkerName is the command's link worker's name, or "".
func linkWorkerName(cmd *LifecycleCommand) string {
	if cmd.LinkWorker == nil {
		return ""
	}
	return cmd.LinkWorker.Name
}

// MaxSDSUserIDLength caps an SDS user id; real ones are 12 digits.
const MaxSDSUserIDLength = 64

// checkLinkWorker refuses a link worker's SDS user id that is not 1 to
// MaxSDSUserIDLength ASCII letters and digits (EUNPROCESSABLE at
// linkWorker.sdsUserId): it goes into FHIR references as an identifier
// value (docs/identifiers.md#link-workers).
func checkLinkWorker(lw *LinkWorker) error {
	if lw == nil || lw.SDSUserID == "" {
		return nil
	}
	ok := len(lw.SDSUserID) <= MaxSDSUserIDLength
	for _, c := range lw.SDSUserID {
		ok = ok && (c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z')
	}
	if !ok {
		return Errorf(EUNPROCESSABLE, "linkWorker.sdsUserId must be 1 to %d letters and digits", MaxSDSUserIDLength).At("linkWorker.sdsUserId")
	}
	return nil
}
