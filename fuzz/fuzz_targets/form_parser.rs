//! The strict `application/x-www-form-urlencoded` parser used by the
//! `Form<T>` extractor and the token endpoint, into real parameter types.

#![no_main]

use std::collections::HashMap;

use latchkey::http::form::{self, FormError};
use latchkey::oidc::authorize::AuthorizeParams;
use latchkey::service::token::TokenRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The extractor refuses larger bodies before parsing.
    if data.len() > form::FORM_LIMIT_BYTES {
        return;
    }
    let map = form::parse::<HashMap<String, String>>(data);
    let authorize = form::parse::<AuthorizeParams>(data);
    let token = form::parse::<TokenRequest>(data);
    let pairs = form::parse::<Vec<(String, String)>>(data);

    // Invalid UTF-8 (raw or percent-encoded) is always refused, and refused
    // as an encoding error whatever the target type.
    let utf8 = std::str::from_utf8(data).is_ok();
    let refused = matches!(map, Err(FormError::Encoding));
    assert_eq!(refused, matches!(authorize, Err(FormError::Encoding)));
    assert_eq!(refused, matches!(token, Err(FormError::Encoding)));
    assert_eq!(refused, matches!(pairs, Err(FormError::Encoding)));
    if !utf8 {
        assert!(refused, "invalid UTF-8 was accepted");
    }
    if let Ok(pairs) = &pairs {
        // Every decoded value is valid text without U+FFFD substitutes
        // that were not in the input.
        let had_fffd = String::from_utf8_lossy(data).contains('\u{FFFD}')
            || data
                .windows(9)
                .any(|w| w.eq_ignore_ascii_case(b"%EF%BF%BD"));
        if !had_fffd {
            for (k, v) in pairs {
                assert!(!k.contains('\u{FFFD}') && !v.contains('\u{FFFD}'));
            }
        }
    }
    if let Ok(t) = &token {
        let _ = t.check_bounds();
        let _ = format!("{t:?}");
    }
});
