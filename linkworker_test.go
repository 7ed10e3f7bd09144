package linkbridge_test

import (
	"strings"
	"testing"

	"github.com/linkbridge/linkbridge"
)

// TestLinkWorkerSDSUserID: an accept or reassign keeps the link worker's
// SDS user id (and the agreement keeps who agreed, with theirs); one that
// is not 1–64 letters and digits is refused at linkWorker.sdsUserId and
// changes nothing.
func TestLinkWorkerSDSUserID(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"555 050 304199", "555-050", "5550|50304199", strings.Repeat("1", linkbridge.MaxSDSUserIDLength+1), "５５５"} {
		r := openReferral(linkbridge.TaskRequested)
		before := *r
		cmd := &linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: &linkbridge.LinkWorker{ID: "lw-1", SDSUserID: bad}}
		checkCode(t, r.Apply(cmd, caseNow), linkbridge.EUNPROCESSABLE, "linkWorker.sdsUserId")
		if r.Status != before.Status || r.LinkWorker != before.LinkWorker {
			t.Errorf("a refused SDS user id %q changed the referral: %+v", bad, r.LinkWorker)
		}
	}
	r := openReferral(linkbridge.TaskRequested)
	lw := linkbridge.LinkWorker{ID: "lw-1", Name: "Sam", SDSUserID: "555050304199"}
	if err := r.Apply(&linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: &lw}, caseNow); err != nil {
		t.Fatal(err)
	}
	if err := r.Apply(&linkbridge.LifecycleCommand{Action: linkbridge.ActionAgree}, caseNow); err != nil {
		t.Fatal(err)
	}
	next := linkbridge.LinkWorker{ID: "lw-2", SDSUserID: strings.Repeat("7", linkbridge.MaxSDSUserIDLength)}
	if err := r.Apply(&linkbridge.LifecycleCommand{Action: linkbridge.ActionReassign, LinkWorker: &next}, caseNow); err != nil {
		t.Fatal(err)
	}
	if r.LinkWorker != next || r.AgreedBy != lw {
		t.Errorf("holder %+v, agreed by %+v; want %+v, %+v", r.LinkWorker, r.AgreedBy, next, lw)
	}
}
