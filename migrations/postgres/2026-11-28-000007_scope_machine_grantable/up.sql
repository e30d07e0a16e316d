-- Whether a client acting for itself (client_credentials) may hold a
-- custom scope. Off for new scopes. On upgrade, existing scopes any user
-- may be granted stay grantable to machine clients (admin-created
-- client_credentials clients holding them keep working); group-restricted
-- ones do not.
ALTER TABLE scopes ADD COLUMN machine_grantable BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE scopes SET machine_grantable = TRUE
    WHERE name NOT IN (SELECT scope_name FROM scope_groups);
