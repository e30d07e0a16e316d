//! The configuration loader: defaults < TOML text, then validation, via
//! `Config::from_toml_str` (the file layer of `Config::load`).

#![no_main]

use latchkey::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = Config::from_toml_str(text) {
        // A validated config answers its derived settings without failing.
        assert!(
            config.issuer_url().is_ok(),
            "validated issuer does not parse"
        );
        assert!(
            config.bind_addr().is_ok(),
            "validated bind does not resolve"
        );
        let _ = config.default_audience();
        let _ = config.secure_cookies();
        // Validation is idempotent: a normalised config stays valid.
        assert!(config.validate().is_ok(), "normalised config is invalid");
    }
});
