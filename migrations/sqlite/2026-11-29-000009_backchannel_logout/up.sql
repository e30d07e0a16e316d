-- OpenID Connect Back-Channel Logout 1.0: where a client wants logout
-- tokens, and whether it needs `sid` in them (we always send it).
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT;
ALTER TABLE clients ADD COLUMN backchannel_logout_session_required BOOLEAN NOT NULL DEFAULT FALSE;

-- The outbox: one row per (ended session, participating client), written
-- in the transaction that ends the session. Delivery workers in every
-- instance claim a row with a conditional UPDATE of `claimed_until`, sign
-- a fresh logout token per attempt, and record the outcome.
CREATE TABLE logout_outbox (
    id TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    sid TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    claimed_until TIMESTAMP,
    delivered_at TIMESTAMP,
    gave_up_at TIMESTAMP,
    last_error TEXT
);
CREATE INDEX logout_outbox_pending ON logout_outbox(next_attempt_at)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;
CREATE INDEX logout_outbox_client ON logout_outbox(client_id, created_at);

-- Every delivery attempt's outcome, for the admin's delivery status.
CREATE TABLE logout_delivery_attempts (
    outbox_id TEXT NOT NULL REFERENCES logout_outbox(id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    at TIMESTAMP NOT NULL,
    http_status INTEGER,
    delivered BOOLEAN NOT NULL,
    detail TEXT,
    PRIMARY KEY (outbox_id, attempt)
);

-- Finding the clients that took part in a session (by its `sid`).
CREATE INDEX grants_sid ON grants(sid);
