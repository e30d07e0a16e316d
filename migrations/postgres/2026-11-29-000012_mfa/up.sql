-- Second factors (issue 13). How a session signed in (`amr`, RFC 8176
-- values, space-separated; NULL: a password, as before this migration),
-- copied onto the grants it makes so ID tokens issued on refresh say the
-- same.
ALTER TABLE sessions ADD COLUMN amr TEXT;
ALTER TABLE grants ADD COLUMN amr TEXT;
-- A client whose tokens are issued only after a second factor.
ALTER TABLE clients ADD COLUMN require_mfa BOOLEAN NOT NULL DEFAULT FALSE;
-- One TOTP authenticator per user. The seed is sealed with a key derived
-- from the KEK (AES-256-GCM, bound to the user id); `confirmed_at` is NULL
-- until a first valid code confirmed the enrolment; `last_step` is the
-- last TOTP step accepted, so no code is accepted twice; `started_by` is
-- the SHA-256 of the session that started a pending enrolment (only that
-- session is shown its seed or may confirm it).
CREATE TABLE mfa_totp (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret_enc TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    confirmed_at TIMESTAMP,
    last_step INTEGER,
    last_used_at TIMESTAMP,
    started_by TEXT
);
-- Recovery codes: only the HMAC-SHA-256 of each (they are 50-bit random),
-- under a key derived from the KEK, so a copy of the database alone does
-- not let anyone try every code offline.
CREATE TABLE mfa_recovery_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX mfa_recovery_codes_user ON mfa_recovery_codes(user_id);
-- A sign-in waiting for its second factor: the SHA-256 of the cookie
-- value, short-lived, with a bounded number of attempts.
CREATE TABLE mfa_challenges (
    id_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    attempts INTEGER NOT NULL
);
CREATE INDEX mfa_challenges_user ON mfa_challenges(user_id);
-- `[mfa]` policies: when a user the policy covers, without a second
-- factor, must have set one up (set at their first sign-in under it).
CREATE TABLE mfa_enrol_deadlines (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    deadline TIMESTAMP NOT NULL
);
