DROP INDEX grants_sid;
DROP TABLE logout_delivery_attempts;
DROP TABLE logout_outbox;
ALTER TABLE clients DROP COLUMN backchannel_logout_session_required;
ALTER TABLE clients DROP COLUMN backchannel_logout_uri;
