DROP TABLE revoked_tokens;
DROP TABLE consents;
DROP TABLE refresh_tokens;
DROP TABLE authorization_codes;
DROP TABLE grants;
ALTER TABLE sessions DROP COLUMN sid;
