-- Audiences (RFC 8707 resource indicators) a client serves as a resource
-- server: it may introspect access tokens whose `aud` names one of them.
-- JSON array; set by admins only, never through dynamic registration.
ALTER TABLE clients ADD COLUMN resource_audiences TEXT NOT NULL DEFAULT '[]';
