//! `latchkey-verify`: compact JWS parsing and verification against a
//! pinned JWKS, claim checks on payloads signed with a trusted key, and
//! the JWKS parser itself. The first byte picks the mode.

#![no_main]

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::{Ed25519, Jwk, KeyPair};
use josekit::jws::{ES256, EdDSA, JwsSigner};
use latchkey_fuzz::{AUDIENCE, ISSUER};
use latchkey_verify::{Algorithm, KeySet, Verifier};
use libfuzzer_sys::fuzz_target;

struct Fixture {
    verifier: Verifier,
    signers: [(Box<dyn JwsSigner>, &'static str); 2],
}

/// Keys made once per process: an Ed25519 and a P-256 key, published as a
/// pinned JWKS (the Ed25519 key with `alg`, the P-256 key without). A
/// third, RSA-free entry that is not a signing key checks it is skipped.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let ed = EdDSA.generate_key_pair(Ed25519).expect("Ed25519 key");
        let ec = ES256.generate_key_pair().expect("P-256 key");
        let mut ed_private = ed.to_jwk_private_key();
        ed_private.set_key_id("ed-1");
        let mut ed_public = ed.to_jwk_public_key();
        ed_public.set_key_id("ed-1");
        ed_public.set_algorithm("EdDSA");
        let mut ec_private = ec.to_jwk_private_key();
        ec_private.set_key_id("ec-1");
        let mut ec_public = ec.to_jwk_public_key();
        ec_public.set_key_id("ec-1");
        let mut enc = Jwk::new("oct");
        enc.set_key_id("secret");
        enc.set_parameter("k", Some("c2VjcmV0".into())).expect("k");
        let jwks = serde_json::json!({ "keys": [ed_public, ec_public, enc] });
        let verifier = Verifier::builder(ISSUER, AUDIENCE)
            .pinned_jwks(serde_json::to_vec(&jwks).expect("JWKS"))
            .build()
            .expect("verifier");
        assert_eq!(verifier.key_ids().len(), 2, "the oct key must be skipped");
        Fixture {
            verifier,
            signers: [
                (
                    Box::new(EdDSA.signer_from_jwk(&ed_private).expect("signer")),
                    "ed-1",
                ),
                (
                    Box::new(ES256.signer_from_jwk(&ec_private).expect("signer")),
                    "ec-1",
                ),
            ],
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let fx = fixture();
    match selector % 3 {
        // Any string as a bearer token: nobody without the keys can make
        // one that verifies.
        0 => {
            let token = String::from_utf8_lossy(rest);
            assert!(
                fx.verifier.verify_cached(&token).is_err(),
                "forged token accepted"
            );
        }
        // The JWKS parser, as a pinned document and on its own.
        1 => {
            if let Ok(set) = KeySet::from_jwks(rest, &Algorithm::ALL) {
                assert_eq!(set.is_empty(), set.len() == 0);
                let _ = set.kids().count();
            }
            let _ = Verifier::builder(ISSUER, AUDIENCE)
                .algorithms([Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256])
                .pinned_jwks(rest)
                .build();
        }
        // Genuinely signed tokens with a fuzzed payload (and, when the
        // bytes hold a newline, a fuzzed header before it): the claim
        // checks and the header rules.
        _ => {
            let (signer, kid) = &fx.signers[usize::from(selector & 4 != 0)];
            let (header, payload) = match rest.iter().position(|b| *b == b'\n') {
                Some(i) if selector & 8 != 0 => (rest[..i].to_vec(), &rest[i + 1..]),
                _ => (
                    serde_json::to_vec(&serde_json::json!({
                        "alg": signer.algorithm().name(),
                        "typ": "at+jwt",
                        "kid": kid,
                    }))
                    .expect("header"),
                    rest,
                ),
            };
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(&header),
                URL_SAFE_NO_PAD.encode(payload)
            );
            let Ok(signature) = signer.sign(input.as_bytes()) else {
                return;
            };
            let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature));
            if let Ok(at) = fx.verifier.verify_cached(&token) {
                assert_eq!(at.issuer, ISSUER);
                assert!(at.audience.iter().any(|a| a == AUDIENCE));
                assert!(
                    !at.subject.is_empty()
                        && at.client_id.as_deref().is_some_and(|c| !c.is_empty())
                );
                // The same token with another signature must fail.
                let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode([0u8; 64]));
                assert!(
                    fx.verifier.verify_cached(&forged).is_err(),
                    "bad signature accepted"
                );
            }
        }
    }
});
