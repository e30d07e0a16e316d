ALTER TABLE scopes DROP COLUMN machine_grantable;
