package linkbridge

// TaskStatus is a FHIR R4 Task.status code as used by the SDOH Clinical Care
// "Task for Referral Management" profile.
type TaskStatus string

// The referral Task statuses. Received and Ready are base FHIR codes that the
// SDOH referral value set excludes; Received is tolerated on input (the
// Gravity reference EHR emits it) and never emitted.
const (
	TaskDraft          TaskStatus = "draft"
	TaskRequested      TaskStatus = "requested"
	TaskReceived       TaskStatus = "received"
	TaskAccepted       TaskStatus = "accepted"
	TaskRejected       TaskStatus = "rejected"
	TaskReady          TaskStatus = "ready"
	TaskCancelled      TaskStatus = "cancelled"
	TaskInProgress     TaskStatus = "in-progress"
	TaskOnHold         TaskStatus = "on-hold"
	TaskFailed         TaskStatus = "failed"
	TaskCompleted      TaskStatus = "completed"
	TaskEnteredInError TaskStatus = "entered-in-error"
)

// Actor is the side of the referral that asks for a status change.
type Actor string

const (
	// ActorRequester is the referring GP system (SDOH "Requester").
	ActorRequester Actor = "requester"
	// ActorPerformer is the social prescribing service (SDOH "Referral Target").
	ActorPerformer Actor = "performer"
)

// taskTransitions is the SDOH referral Task state diagram
// (docs/referral-exchange.md#task-states, decoded from
// ReferralTaskStateDiagram.drawio). Entered-in-error is
// reachable from every status and handled separately.
var taskTransitions = map[TaskStatus][]TaskStatus{
	TaskDraft:      {TaskRequested},
	TaskRequested:  {TaskAccepted, TaskRejected, TaskCancelled},
	TaskAccepted:   {TaskInProgress, TaskOnHold, TaskCancelled, TaskCompleted, TaskFailed},
	TaskInProgress: {TaskOnHold, TaskCompleted, TaskFailed, TaskCancelled},
	TaskOnHold:     {TaskInProgress, TaskCancelled, TaskCompleted, TaskFailed},
}

// taskSetBy says who may set each status
// (docs/referral-exchange.md#who-may-set-each-status, from the SDOH profile
// intro): draft, requested and entered-in-error by the requester; accepted,
// rejected, in-progress, on-hold, failed and completed by the target;
// cancelled by either.
var taskSetBy = map[TaskStatus][]Actor{
	TaskDraft:          {ActorRequester},
	TaskRequested:      {ActorRequester},
	TaskEnteredInError: {ActorRequester},
	TaskAccepted:       {ActorPerformer},
	TaskRejected:       {ActorPerformer},
	TaskInProgress:     {ActorPerformer},
	TaskOnHold:         {ActorPerformer},
	TaskFailed:         {ActorPerformer},
	TaskCompleted:      {ActorPerformer},
	TaskCancelled:      {ActorRequester, ActorPerformer},
}

// Terminal reports whether no transition leaves s.
func (s TaskStatus) Terminal() bool {
	switch s {
	case TaskRejected, TaskCancelled, TaskCompleted, TaskFailed, TaskEnteredInError:
		return true
	}
	return false
}

// Valid reports whether s is a base FHIR R4 TaskStatus code.
func (s TaskStatus) Valid() bool {
	switch s {
	case TaskDraft, TaskRequested, TaskReceived, TaskAccepted, TaskRejected, TaskReady,
		TaskCancelled, TaskInProgress, TaskOnHold, TaskFailed, TaskCompleted, TaskEnteredInError:
		return true
	}
	return false
}

// InitialTaskStatus checks the status a new referral Task arrives with: only
// draft or requested (or received, tolerated from real systems and stored as
// requested). It returns the status to store.
func InitialTaskStatus(s TaskStatus) (TaskStatus, error) {
	switch s {
	case TaskDraft, TaskRequested:
		return s, nil
	case TaskReceived:
		return TaskRequested, nil
	}
	return "", Errorf(EUNPROCESSABLE, "a new referral Task must have status draft or requested, not %q", s).At("Task.status")
}

// CheckTaskTransition enforces the SDOH referral Task state machine and who
// may set each status. A change to the same status is allowed (an update that
// changes other elements). The error is ECONFLICT for an illegal transition
// and names the current and requested status.
func CheckTaskTransition(from, to TaskStatus, by Actor) error {
	if !to.Valid() {
		return Errorf(EUNPROCESSABLE, "unknown Task status %q", to).At("Task.status")
	}
	if from == to {
		if from.Terminal() {
			return Errorf(ECONFLICT, "Task is %s, a terminal status: it cannot be changed", from).At("Task.status")
		}
		return nil
	}
	allowed := false
	if to == TaskEnteredInError {
		allowed = from != TaskEnteredInError
	} else {
		for _, s := range taskTransitions[from] {
			if s == to {
				allowed = true
				break
			}
		}
	}
	if !allowed {
		return Errorf(ECONFLICT, "illegal Task status transition from %s to %s", from, to).At("Task.status")
	}
	for _, a := range taskSetBy[to] {
		if a == by {
			return nil
		}
	}
	return Errorf(ECONFLICT, "the %s may not set Task status %s (transition from %s)", by, to, from).At("Task.status")
}
