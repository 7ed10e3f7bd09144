-- 020_report_indexes: indexes that let a report, the caseload and the MDT
-- board read the referrals active in their period instead of every
-- referral of their scope ever received (docs/performance.md#reports).
-- Forward only: it adds indexes and changes no stored value.
--
-- A report from a date reads, in its scope (a service, or practices),
-- the referrals still open and those changed since (sqlshared.
-- ReportActiveSince): one index per side of that OR, per scope.
CREATE INDEX referral_service_status ON referral (service_ods, status, received_at);
CREATE INDEX referral_service_updated ON referral (service_ods, updated_at);
CREATE INDEX referral_referrer_status ON referral (referrer_ods, status, received_at);
CREATE INDEX referral_referrer_updated ON referral (referrer_ods, updated_at);
