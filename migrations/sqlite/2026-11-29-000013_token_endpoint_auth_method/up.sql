-- How a client authenticates at the token endpoint, as it registered it
-- (RFC 7591 token_endpoint_auth_method), so RFC 7592 reads report it.
-- Existing clients: derived from public (none) or confidential
-- (client_secret_basic, the RFC 7591 default).
ALTER TABLE clients ADD COLUMN token_endpoint_auth_method TEXT NOT NULL DEFAULT 'client_secret_basic';
UPDATE clients SET token_endpoint_auth_method = 'none' WHERE is_public;
