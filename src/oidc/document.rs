//! A public JSON document served from precomputed bytes (discovery, JWKS):
//! the body and its gzip encoding are made once, when the document is
//! built, so no request pays for compression.

use std::io::Write;

use bytes::Bytes;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    body: Bytes,
    /// `None` only if compressing failed (then the body is sent as is).
    gzip: Option<Bytes>,
}

impl Document {
    pub fn new(body: impl Into<Bytes>) -> Self {
        let body = body.into();
        let gzip = gzip(&body);
        Self { body, gzip }
    }

    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The gzip encoding, when it is smaller than the body.
    pub fn gzip(&self) -> Option<&Bytes> {
        self.gzip.as_ref().filter(|g| g.len() < self.body.len())
    }
}

fn gzip(body: &[u8]) -> Option<Bytes> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(body).ok()?;
    encoder.finish().ok().map(Bytes::from)
}

/// Whether an `Accept-Encoding` value accepts gzip (RFC 9110 12.5.3): a
/// `gzip` or `*` coding whose weight is not zero.
pub fn accepts_gzip(accept_encoding: &str) -> bool {
    accept_encoding.split(',').any(|item| {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let zero = parts.any(|p| {
            let p = p.trim();
            p.get(..2).is_some_and(|k| k.eq_ignore_ascii_case("q="))
                && p[2..].trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !zero
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gzip_encoding_decodes_to_the_body() {
        let body = format!("{{\"keys\":[{}]}}", "{\"kty\":\"EC\"},".repeat(40));
        let doc = Document::new(body.clone());
        let mut out = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(&doc.gzip().unwrap()[..]),
            &mut out,
        )
        .unwrap();
        assert_eq!(out, body);
        // Nothing is gained on a tiny document: no gzip variant.
        assert!(Document::new("{}").gzip().is_none());
    }

    #[test]
    fn accept_encoding_weights() {
        assert!(accepts_gzip("gzip"));
        assert!(accepts_gzip("deflate, GZIP;q=0.5"));
        assert!(accepts_gzip("br, *"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("gzip; q=0.000"));
        assert!(!accepts_gzip("br, deflate"));
        assert!(!accepts_gzip(""));
        assert!(!accepts_gzip("gzipx"));
    }
}
