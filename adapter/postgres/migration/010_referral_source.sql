-- 010_referral_source: where a referral came from (GP practice, pharmacy,
-- other statutory organisation, voluntary sector, self-referral;
-- linkbridge.ReferralSource). A referral from no organisation with an ODS
-- code (self-referral, voluntary sector) has referrer_ods ''. Referrals
-- stored before this came from an organisation with an ODS code: their
-- source is read from the code as linkbridge.SourceOfODS reads it (a GP
-- practice is one letter and five digits, a pharmacy F and four more).
-- Forward only.
ALTER TABLE referral ADD COLUMN referral_source text NOT NULL DEFAULT '';
UPDATE referral SET referral_source = CASE
	WHEN referrer_ods ~ '^[A-Z][0-9]{5}$' THEN 'gp-practice'
	WHEN referrer_ods ~ '^F.{4}$' THEN 'pharmacy'
	ELSE 'other-statutory' END;
