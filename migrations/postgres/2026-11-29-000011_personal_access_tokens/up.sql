-- Personal access tokens: long-lived credentials a user (or an admin for
-- them) creates for scripts and tools. Only the SHA-256 of the token is
-- stored, with a short hint (the first 8 characters after the `lkp_`
-- prefix) so people can tell their tokens apart. `scope` is what the user
-- chose at creation; every use intersects it with what the user may hold
-- then. Revoking sets `revoked_at` (the audit log records who); housekeeping
-- deletes rows revoked or expired long ago. `last_used_at` is written at
-- most once a minute per token.
CREATE TABLE personal_access_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    hint TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE UNIQUE INDEX personal_access_tokens_hash ON personal_access_tokens(token_hash);
CREATE INDEX personal_access_tokens_user ON personal_access_tokens(user_id);
