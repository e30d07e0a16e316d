//! Latchkey: an OpenID Connect identity provider.
//!
//! Module map: `config` (layered settings), `store` (diesel over SQLite and
//! PostgreSQL), `domain` (pure validation), `service` (use cases), `http`
//! (routes and pages), `cli` (the `latchkey` command), `app` (wiring).

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod http;
pub mod keys;
pub mod oidc;
pub mod service;
pub mod state;
pub mod store;
pub mod telemetry;
