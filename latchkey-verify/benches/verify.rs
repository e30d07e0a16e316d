//! Verifications per second on one core, for RS256, ES256 and EdDSA
//! tokens: the whole `Verifier::verify_cached` path (parse, key lookup,
//! signature, claims) beside josekit's bare signature check on the same
//! token, so the overhead of everything but the signature shows.
//!
//! `cargo bench -p latchkey-verify --bench verify [-- SECONDS]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use josekit::jwk::Jwk;
use josekit::jwk::alg::ed::EdCurve;
use josekit::jws::{ES256, EdDSA, JwsHeader, JwsSigner, JwsVerifier, RS256};
use josekit::jwt::JwtPayload;
use latchkey_verify::Verifier;

const ISSUER: &str = "https://id.example.com";
const AUDIENCE: &str = "https://notes.example.com";

fn keypair(alg: &str) -> (Jwk, Jwk) {
    let (mut private, mut public) = match alg {
        "RS256" => {
            let k = RS256.generate_key_pair(2048).unwrap();
            (k.to_jwk_private_key(), k.to_jwk_public_key())
        }
        "ES256" => {
            let k = ES256.generate_key_pair().unwrap();
            (k.to_jwk_private_key(), k.to_jwk_public_key())
        }
        _ => {
            let k = EdDSA.generate_key_pair(EdCurve::Ed25519).unwrap();
            (k.to_jwk_private_key(), k.to_jwk_public_key())
        }
    };
    for k in [&mut private, &mut public] {
        k.set_key_id(format!("bench-{alg}"));
        k.set_algorithm(alg);
        k.set_key_use("sig");
    }
    (private, public)
}

fn signer(alg: &str, jwk: &Jwk) -> Box<dyn JwsSigner> {
    match alg {
        "RS256" => Box::new(RS256.signer_from_jwk(jwk).unwrap()),
        "ES256" => Box::new(ES256.signer_from_jwk(jwk).unwrap()),
        _ => Box::new(EdDSA.signer_from_jwk(jwk).unwrap()),
    }
}

fn raw_verifier(alg: &str, jwk: &Jwk) -> Box<dyn JwsVerifier> {
    match alg {
        "RS256" => Box::new(RS256.verifier_from_jwk(jwk).unwrap()),
        "ES256" => Box::new(ES256.verifier_from_jwk(jwk).unwrap()),
        _ => Box::new(EdDSA.verifier_from_jwk(jwk).unwrap()),
    }
}

fn token(alg: &str, private: &Jwk) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let mut header = JwsHeader::new();
    header.set_token_type("at+jwt");
    header.set_key_id(format!("bench-{alg}"));
    let mut p = JwtPayload::new();
    p.set_issuer(ISSUER);
    p.set_audience(vec![AUDIENCE]);
    p.set_subject("5b0c3c0e-1d7e-4a57-9d5e-2f6b7c1e9a10");
    p.set_jwt_id("0f8e2d4c-9b1a-4c3e-8d7f-6a5b4c3d2e1f");
    p.set_issued_at(&(UNIX_EPOCH + now));
    p.set_expires_at(&(UNIX_EPOCH + now + Duration::from_secs(3600)));
    p.set_claim("client_id", Some("3f6c8a1e-notes-cli".into()))
        .unwrap();
    p.set_claim("scope", Some("read:notes write:notes".into()))
        .unwrap();
    josekit::jwt::encode_with_signer(&p, &header, signer(alg, private).as_ref()).unwrap()
}

fn rate(seconds: f64, mut f: impl FnMut()) -> f64 {
    for _ in 0..200 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        for _ in 0..100 {
            f();
        }
        n += 100;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let seconds: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3.0);
    println!("one thread, {seconds} s per figure");
    println!(
        "| alg | verify_cached (tokens/s) | µs/token | bare signature check (/s) | share of bare |"
    );
    println!("|---|---:|---:|---:|---:|");
    for alg in ["RS256", "ES256", "EdDSA"] {
        let (private, public) = keypair(alg);
        let jwks =
            serde_json::json!({ "keys": [serde_json::Value::Object(public.as_ref().clone())] });
        let verifier = Verifier::builder(ISSUER, AUDIENCE)
            .pinned_jwks(serde_json::to_vec(&jwks).unwrap())
            .build()
            .unwrap();
        let token = token(alg, &private);
        verifier.verify_cached(&token).unwrap();
        let ours = rate(seconds, || {
            black_box(verifier.verify_cached(black_box(&token)).is_ok());
        });
        let raw = raw_verifier(alg, &public);
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig).unwrap();
        let bare = rate(seconds, || {
            black_box(
                raw.verify(black_box(input.as_bytes()), black_box(&sig))
                    .is_ok(),
            );
        });
        println!(
            "| {alg} | {ours:.0} | {:.1} | {bare:.0} | {:.0}% |",
            1e6 / ours,
            100.0 * ours / bare
        );
    }
}
