//! Decides whether the PostgreSQL test suite runs: with CI=true it must (and
//! uses the local server by default); elsewhere only when
//! LATCHKEY_TEST_POSTGRES_URL is set. Otherwise those tests are reported as
//! ignored, with the reason, rather than passing silently.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(latchkey_pg)");
    println!("cargo::rerun-if-env-changed=LATCHKEY_TEST_POSTGRES_URL");
    println!("cargo::rerun-if-env-changed=CI");
    let has_url = std::env::var("LATCHKEY_TEST_POSTGRES_URL").is_ok_and(|v| !v.is_empty());
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    if has_url || ci {
        println!("cargo::rustc-cfg=latchkey_pg");
    }
}
