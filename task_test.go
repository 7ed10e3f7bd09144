package linkbridge_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/linkbridge/linkbridge"
)

// allStatuses is every base FHIR R4 TaskStatus code.
var allStatuses = []linkbridge.TaskStatus{
	linkbridge.TaskDraft, linkbridge.TaskRequested, linkbridge.TaskReceived, linkbridge.TaskAccepted,
	linkbridge.TaskRejected, linkbridge.TaskReady, linkbridge.TaskCancelled, linkbridge.TaskInProgress,
	linkbridge.TaskOnHold, linkbridge.TaskFailed, linkbridge.TaskCompleted, linkbridge.TaskEnteredInError,
}

var allActors = []linkbridge.Actor{linkbridge.ActorRequester, linkbridge.ActorPerformer}

// specEdges is the SDOH referral Task state diagram, transcribed
// independently of task.go from docs/referral-exchange.md#task-states
// ("from → may go to").
// Entered-in-error ("can be reached from any other status") is added in
// legalTransition.
var specEdges = map[linkbridge.TaskStatus][]linkbridge.TaskStatus{
	"draft":       {"requested"},
	"requested":   {"accepted", "rejected", "cancelled"},
	"accepted":    {"in-progress", "on-hold", "cancelled", "completed", "failed"},
	"in-progress": {"on-hold", "completed", "failed", "cancelled"},
	"on-hold":     {"in-progress", "cancelled", "completed", "failed"},
	// rejected, cancelled, completed, failed, entered-in-error: terminal.
	// received and ready are outside the referral value set: no edges.
}

// specSetBy is docs/referral-exchange.md#who-may-set-each-status.
var specSetBy = map[linkbridge.TaskStatus][]linkbridge.Actor{
	"draft": {"requester"}, "requested": {"requester"}, "entered-in-error": {"requester"},
	"accepted": {"performer"}, "rejected": {"performer"}, "in-progress": {"performer"},
	"on-hold": {"performer"}, "failed": {"performer"}, "completed": {"performer"},
	"cancelled": {"requester", "performer"},
}

var specTerminal = map[linkbridge.TaskStatus]bool{
	"rejected": true, "cancelled": true, "completed": true, "failed": true, "entered-in-error": true,
}

// legalTransition is the oracle: the diagram edge exists (or the target is
// entered-in-error from any other status) and the actor may set the target.
// Staying in the same non-terminal status is an update of other elements and
// is allowed for either actor (CheckTaskTransition's documented contract).
func legalTransition(from, to linkbridge.TaskStatus, by linkbridge.Actor) bool {
	if from == to {
		return !specTerminal[from]
	}
	edge := to == linkbridge.TaskEnteredInError
	for _, s := range specEdges[from] {
		if s == to {
			edge = true
		}
	}
	if !edge {
		return false
	}
	for _, a := range specSetBy[to] {
		if a == by {
			return true
		}
	}
	return false
}

func TestCheckTaskTransition(t *testing.T) {
	t.Parallel()
	legal := 0
	for _, from := range allStatuses {
		for _, to := range allStatuses {
			for _, by := range allActors {
				want := legalTransition(from, to, by)
				name := string(from) + "_to_" + string(to) + "_by_" + string(by)
				err := linkbridge.CheckTaskTransition(from, to, by)
				if want {
					legal++
					if err != nil {
						t.Errorf("%s: CheckTaskTransition returned unexpected error: %v", name, err)
					}
					continue
				}
				if err == nil {
					t.Errorf("%s: CheckTaskTransition = nil, want ECONFLICT", name)
					continue
				}
				if code := linkbridge.ErrorCode(err); code != linkbridge.ECONFLICT {
					t.Errorf("%s: ErrorCode = %q, want %q (err %v)", name, code, linkbridge.ECONFLICT, err)
				}
				msg := linkbridge.ErrorMessage(err)
				if !strings.Contains(msg, string(from)) || !strings.Contains(msg, string(to)) {
					t.Errorf("%s: message %q does not name both %s and %s", name, msg, from, to)
				}
				if got := linkbridge.ErrorExpression(err); len(got) != 1 || got[0] != "Task.status" {
					t.Errorf("%s: expression = %q, want [Task.status]", name, got)
				}
			}
		}
	}
	// Guard the oracle itself against an accidental "everything is legal"
	// or "nothing is legal": count the legal cells by hand.
	//  edges (by setter): draft→requested 1, requested→{acc,rej 1 each; cancel 2} 4,
	//  accepted→{ip,oh,comp,fail 1 each; cancel 2} 6, in-progress→5, on-hold→5;
	//  →entered-in-error from the 11 other statuses, requester only: 11;
	//  same status, non-terminal (7 statuses) × 2 actors: 14.
	if want := 1 + 4 + 6 + 5 + 5 + 11 + 14; legal != want {
		t.Errorf("oracle counts %d legal (from, to, actor) cells, want %d", legal, want)
	}
}

func TestCheckTaskTransitionSpotChecks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		from, to linkbridge.TaskStatus
		by       linkbridge.Actor
		wantCode string
	}{
		{"OKPerformerAccepts", "requested", "accepted", "performer", ""},
		{"OKRequesterCancels", "requested", "cancelled", "requester", ""},
		{"OKPerformerCancelsInProgress", "in-progress", "cancelled", "performer", ""},
		{"OKRequesterEntersInError", "completed", "entered-in-error", "requester", ""},
		{"ErrRequesterCompletes", "requested", "completed", "requester", linkbridge.ECONFLICT},
		{"ErrPerformerCompletesFromRequested", "requested", "completed", "performer", linkbridge.ECONFLICT},
		{"ErrRequesterAccepts", "requested", "accepted", "requester", linkbridge.ECONFLICT},
		{"ErrPerformerEntersInError", "accepted", "entered-in-error", "performer", linkbridge.ECONFLICT},
		{"ErrRejectedIsTerminal", "rejected", "in-progress", "performer", linkbridge.ECONFLICT},
		{"ErrCompletedStaysCompleted", "completed", "completed", "performer", linkbridge.ECONFLICT},
		{"ErrUnknownStatus", "requested", "bogus", "performer", linkbridge.EUNPROCESSABLE},
		{"ErrEmptyStatus", "requested", "", "requester", linkbridge.EUNPROCESSABLE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := linkbridge.CheckTaskTransition(tt.from, tt.to, tt.by)
			if got := linkbridge.ErrorCode(err); got != tt.wantCode {
				t.Fatalf("CheckTaskTransition(%s, %s, %s) code = %q, want %q (err %v)", tt.from, tt.to, tt.by, got, tt.wantCode, err)
			}
		})
	}
}

func TestInitialTaskStatus(t *testing.T) {
	t.Parallel()
	for _, s := range allStatuses {
		got, err := linkbridge.InitialTaskStatus(s)
		switch s {
		case linkbridge.TaskDraft, linkbridge.TaskRequested:
			if err != nil || got != s {
				t.Errorf("InitialTaskStatus(%s) = %q, %v; want %s, nil", s, got, err, s)
			}
		case linkbridge.TaskReceived:
			// Tolerated from the Gravity reference EHR, stored as requested.
			if err != nil || got != linkbridge.TaskRequested {
				t.Errorf("InitialTaskStatus(received) = %q, %v; want requested, nil", got, err)
			}
		default:
			if linkbridge.ErrorCode(err) != linkbridge.EUNPROCESSABLE {
				t.Errorf("InitialTaskStatus(%s) error = %v, want EUNPROCESSABLE", s, err)
			}
			if ex := linkbridge.ErrorExpression(err); len(ex) != 1 || ex[0] != "Task.status" {
				t.Errorf("InitialTaskStatus(%s) expression = %q, want [Task.status]", s, ex)
			}
		}
	}
}

func TestTaskStatusTerminalAndValid(t *testing.T) {
	t.Parallel()
	for _, s := range allStatuses {
		if !s.Valid() {
			t.Errorf("%s.Valid() = false", s)
		}
		if got := s.Terminal(); got != specTerminal[s] {
			t.Errorf("%s.Terminal() = %v, want %v", s, got, specTerminal[s])
		}
	}
	for _, s := range []linkbridge.TaskStatus{"", "Requested", "in_progress", "closed"} {
		if s.Valid() {
			t.Errorf("%q.Valid() = true, want false", s)
		}
	}
}

func TestErrorHelpers(t *testing.T) {
	t.Parallel()
	base := linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "bad %s", "thing")
	at := base.At("Patient.identifier")
	if len(base.Expression) != 0 {
		t.Errorf("At modified the receiver: %q", base.Expression)
	}
	wrapped := errors.Join(errors.New("context"), at)
	if got := linkbridge.ErrorCode(wrapped); got != linkbridge.EUNPROCESSABLE {
		t.Errorf("ErrorCode(wrapped) = %q", got)
	}
	if got := linkbridge.ErrorMessage(wrapped); got != "bad thing" {
		t.Errorf("ErrorMessage(wrapped) = %q", got)
	}
	if got := linkbridge.ErrorExpression(wrapped); len(got) != 1 || got[0] != "Patient.identifier" {
		t.Errorf("ErrorExpression(wrapped) = %q", got)
	}
	if got := linkbridge.ErrorCode(nil); got != "" {
		t.Errorf("ErrorCode(nil) = %q, want empty", got)
	}
	plain := errors.New("disk on fire")
	if got := linkbridge.ErrorCode(plain); got != linkbridge.EINTERNAL {
		t.Errorf("ErrorCode(plain) = %q, want internal", got)
	}
	if got := linkbridge.ErrorMessage(plain); got != "Internal error." {
		t.Errorf("ErrorMessage(plain) = %q: internal details must not leak", got)
	}
	if !strings.Contains(at.Error(), "Patient.identifier") {
		t.Errorf("Error() = %q, want the expression", at.Error())
	}
}
