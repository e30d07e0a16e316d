ALTER TABLE grants DROP COLUMN resource;
ALTER TABLE clients DROP COLUMN id_token_alg;
ALTER TABLE clients DROP COLUMN audiences;
