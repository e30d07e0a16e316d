DROP TABLE login_throttle;
DROP TABLE clients;
DROP TABLE sessions;
DROP TABLE users;
