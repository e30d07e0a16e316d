ALTER TABLE clients DROP COLUMN secret_changed_at;
