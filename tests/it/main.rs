//! The integration tests: one binary (links the crate once), one module per
//! area. `common` is the harness (a fresh database per test, `TestApp`, the
//! `dual_backend!` macro) and its fixture builders.

#![allow(clippy::unwrap_used, clippy::expect_used)]

// First, so `dual_backend!` is in scope in every module below.
#[macro_use]
mod common;

mod account;
mod admin_api;
mod admin_console;
mod admin_paging;
mod admin_registration_hardening;
mod architecture;
mod backchannel;
mod bad_input;
mod browser;
mod cli;
mod db_outage;
mod device;
mod end_session;
mod faults;
mod groups;
mod hardening;
mod http_login;
mod interop;
mod introspection;
mod keys;
mod legacy;
mod machine_scopes;
mod metrics;
mod mfa;
mod mfa_hardening;
mod oidc;
mod ops_cli;
mod pat;
mod refresh;
mod registration_methods;
mod snapshots;
mod storage;
mod token_exchange;
mod upgrade;
mod verify;
