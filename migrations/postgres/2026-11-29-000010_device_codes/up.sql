-- OAuth 2.0 Device Authorization Grant (RFC 8628). One row per device
-- authorization request: only hashes of the device code, the user code
-- and the refresh token the grant will hand out are stored.
--
-- A row moves from pending to approved (grant_id set: the grant made on
-- the consent page, with the user, session id, auth_time and scope) or
-- denied (denied_at), then to redeemed (redeemed_at, set once by the
-- conditional UPDATE that lets one poll win). Housekeeping deletes rows
-- once expires_at has passed.
CREATE TABLE device_codes (
    device_code_hash TEXT PRIMARY KEY NOT NULL,
    user_code_hash TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    resource TEXT,
    refresh_token_hash TEXT NOT NULL,
    interval_secs INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    last_polled_at TIMESTAMP,
    grant_id TEXT REFERENCES grants(id) ON DELETE CASCADE,
    denied_at TIMESTAMP,
    redeemed_at TIMESTAMP
);
-- A user code names one request while any row holds it; expired rows keep
-- theirs until housekeeping, so a new code never repeats an old one.
CREATE UNIQUE INDEX device_codes_user_code ON device_codes(user_code_hash);
CREATE INDEX device_codes_expires ON device_codes(expires_at);
CREATE INDEX device_codes_grant ON device_codes(grant_id);
