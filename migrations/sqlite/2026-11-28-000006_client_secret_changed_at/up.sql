-- When a client's secret was last regenerated (rounded up to the whole
-- second): client_credentials tokens issued before it stop working.
ALTER TABLE clients ADD COLUMN secret_changed_at TIMESTAMP;
