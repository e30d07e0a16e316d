DROP INDEX device_codes_grant;
DROP INDEX device_codes_expires;
DROP INDEX device_codes_user_code;
DROP TABLE device_codes;
