//! Group names: they appear in the `groups` claim, so they are short,
//! printable and free of spaces (RPs often split on them).

use super::Invalid;

pub const GROUP_NAME_MAX: usize = 64;

/// A valid group name: 1..=64 of `A-Z a-z 0-9 . _ -`, not starting with
/// a dot or a dash.
pub fn group_name(raw: &str) -> Result<String, Invalid> {
    let v = raw.trim();
    if v.is_empty() || v.len() > GROUP_NAME_MAX {
        return Err(Invalid::new(
            "group",
            format!("a group name is 1 to {GROUP_NAME_MAX} characters"),
        ));
    }
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if !v.chars().all(ok_char) || v.starts_with(['.', '-']) {
        return Err(Invalid::new(
            "group",
            format!("{v:?}: use letters, digits, '.', '_' and '-' (not first)"),
        ));
    }
    Ok(v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::group_name;

    #[test]
    fn names() {
        assert_eq!(group_name(" staff ").unwrap(), "staff");
        assert!(group_name("dev-ops.eu_1").is_ok());
        for bad in ["", "a b", "-x", ".x", "é", "a\"b", &"x".repeat(65)] {
            assert!(group_name(bad).is_err(), "{bad:?}");
        }
    }
}
