//! Bounded free text (display names and the like).

use super::Invalid;

/// Trims `raw` and checks it is 1..=max characters with no control
/// characters. `None` for an empty value when the field is optional.
pub fn bounded(field: &'static str, raw: &str, max: usize) -> Result<String, Invalid> {
    let v = raw.trim();
    if v.is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(Invalid::new(field, format!("at most {max} characters")));
    }
    if v.chars().any(char::is_control) {
        return Err(Invalid::new(field, "must not contain control characters"));
    }
    Ok(v.to_owned())
}

/// Like [`bounded`], but an empty value means "not set".
pub fn optional(
    field: &'static str,
    raw: Option<&str>,
    max: usize,
) -> Result<Option<String>, Invalid> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => bounded(field, v, max).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_controls() {
        assert_eq!(bounded("name", "  Ada ", 10).unwrap(), "Ada");
        assert!(bounded("name", "", 10).is_err());
        assert!(bounded("name", "a\u{0}b", 10).is_err());
        assert!(bounded("name", &"x".repeat(11), 10).is_err());
        assert_eq!(optional("name", Some("  "), 10).unwrap(), None);
    }
}
