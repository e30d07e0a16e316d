DROP TABLE mfa_enrol_deadlines;
DROP INDEX mfa_challenges_user;
DROP TABLE mfa_challenges;
DROP INDEX mfa_recovery_codes_user;
DROP TABLE mfa_recovery_codes;
DROP TABLE mfa_totp;
ALTER TABLE clients DROP COLUMN require_mfa;
ALTER TABLE grants DROP COLUMN amr;
ALTER TABLE sessions DROP COLUMN amr;
