//! Tokens: opaque secrets now; JWT minting and verification come with the
//! signing keys.

pub mod opaque;
