DROP INDEX personal_access_tokens_user;
DROP INDEX personal_access_tokens_hash;
DROP TABLE personal_access_tokens;
