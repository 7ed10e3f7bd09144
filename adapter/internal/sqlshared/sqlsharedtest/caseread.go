package sqlsharedtest

import (
	"time"

	"github.com/linkbridge/linkbridge"
)

// CaseRead is a read of the case store that the pages and operators make
// often, and whose statements the adapters' plan tests keep from reading
// whole tables: one of List (ListReferrals), Report (ReportReferrals) or
// CaseRecord (GetCaseRecord of that referral).
type CaseRead struct {
	Name       string
	List       *linkbridge.ReferralFilter
	Report     *linkbridge.ReportQuery
	CaseRecord string
}

// boardWindow is how long the MDT board (adapter/mdtweb) shows a closed
// referral after it closed: its report query reads from now minus this.
const boardWindow = 90 * 24 * time.Hour

// CaseReads returns the reads of a store whose "now" is now, as the
// gateway makes them: a service's inbox (/sp/v1/referrals: all, by status,
// a later page, one link worker's), a link worker's and a service's
// caseload, last month's report, a person's case view (of referralID), and
// the MDT board over practices.
func CaseReads(service, linkWorker string, practices []string, referralID string, now time.Time) []CaseRead {
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0)
	caseload := linkbridge.CaseloadQuery(linkbridge.ReportScope{ServiceODS: service, LinkWorkerID: linkWorker}, now)
	serviceCaseload := linkbridge.CaseloadQuery(linkbridge.ReportScope{ServiceODS: service}, now)
	report := linkbridge.PeriodQuery(linkbridge.ReportScope{ServiceODS: service}, month, month.AddDate(0, 1, 0))
	board := linkbridge.ReportQuery{ReportScope: linkbridge.ReportScope{ReferrerODS: practices}, From: now.Add(-boardWindow), To: now.Add(time.Minute)}
	return []CaseRead{
		{Name: "ServiceInbox", List: &linkbridge.ReferralFilter{ServiceODS: service, Limit: 50}},
		{Name: "ServiceInboxRequested", List: &linkbridge.ReferralFilter{ServiceODS: service, Statuses: []linkbridge.TaskStatus{linkbridge.TaskRequested}, Limit: 50}},
		{Name: "ServiceInboxOpen", List: &linkbridge.ReferralFilter{ServiceODS: service, Limit: 50, Offset: 100,
			Statuses: []linkbridge.TaskStatus{linkbridge.TaskAccepted, linkbridge.TaskInProgress, linkbridge.TaskOnHold}}},
		{Name: "LinkWorkerReferrals", List: &linkbridge.ReferralFilter{ServiceODS: service, LinkWorkerID: linkWorker, Limit: 50}},
		{Name: "LinkWorkerCaseload", Report: &caseload},
		{Name: "ServiceCaseload", Report: &serviceCaseload},
		{Name: "MonthReport", Report: &report},
		{Name: "CaseView", CaseRecord: referralID},
		{Name: "MDTBoard", Report: &board},
	}
}
