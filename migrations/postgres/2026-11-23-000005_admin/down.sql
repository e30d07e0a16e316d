DROP TABLE initial_access_tokens;
ALTER TABLE clients DROP COLUMN registration_token_hash;
ALTER TABLE clients DROP COLUMN locked;
DROP TABLE scope_groups;
DROP TABLE scopes;
DROP TABLE user_groups;
DROP TABLE groups;
