//! Scopes (RFC 6749 3.3): space-separated tokens of NQCHAR.

use std::collections::BTreeSet;
use std::fmt;

use super::Invalid;

pub const SCOPE_TOKEN_MAX: usize = 128;
pub const SCOPES_MAX: usize = 64;

/// The scopes about a user every client may be given (OIDC's, plus
/// `groups`). They make no sense without a user, so `client_credentials`
/// never grants them.
pub const STANDARD_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access", "groups"];

/// The scope of Latchkey's own admin API. Users get it only if they are
/// admins; clients only if registered for it.
pub const ADMIN_SCOPE: &str = "latchkey:admin";

/// Built-in scopes and what the consent page says about them. They cannot
/// be deleted or redefined.
pub const BUILTIN_SCOPES: &[(&str, &str)] = &[
    ("openid", "Sign you in with your Latchkey account"),
    ("profile", "See your name, username, picture and language"),
    ("email", "See your email address"),
    ("offline_access", "Keep access while you are away"),
    ("groups", "See which groups you belong to"),
    (
        ADMIN_SCOPE,
        "Administer Latchkey: apps, users, groups and keys",
    ),
];

/// The consent-page text of a built-in scope.
pub fn builtin_description(name: &str) -> Option<&'static str> {
    BUILTIN_SCOPES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, d)| *d)
}

/// The longest scope description.
pub const DESCRIPTION_MAX: usize = 200;

/// One scope token: `%x21 / %x23-5B / %x5D-7E`, 1..=128 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope(String);

impl Scope {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.is_empty() || raw.len() > SCOPE_TOKEN_MAX {
            return Err(Invalid::new(
                "scope",
                format!("each scope is 1 to {SCOPE_TOKEN_MAX} characters"),
            ));
        }
        let nqchar = |b: u8| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b);
        if !raw.bytes().all(nqchar) {
            return Err(Invalid::new(
                "scope",
                format!("{raw:?} has a character not allowed in a scope"),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An ordered set of scopes, written space-separated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(BTreeSet<Scope>);

impl ScopeSet {
    /// Parses a space-separated list (RFC 6749 `scope` parameter).
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        Self::from_items(raw.split(' ').filter(|s| !s.is_empty()))
    }

    pub fn from_items<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Self, Invalid> {
        let mut set = BTreeSet::new();
        for item in items {
            for token in item.split(' ').filter(|s| !s.is_empty()) {
                set.insert(Scope::parse(token)?);
                if set.len() > SCOPES_MAX {
                    return Err(Invalid::new(
                        "scope",
                        format!("at most {SCOPES_MAX} scopes"),
                    ));
                }
            }
        }
        Ok(Self(set))
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s.as_str() == scope)
    }

    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet(self.0.intersection(&other.0).cloned().collect())
    }

    pub fn union(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet(self.0.union(&other.0).cloned().collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes of this set for which `keep` is true.
    pub fn filter(&self, mut keep: impl FnMut(&str) -> bool) -> ScopeSet {
        ScopeSet(
            self.0
                .iter()
                .filter(|s| keep(s.as_str()))
                .cloned()
                .collect(),
        )
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(Scope::as_str)
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(s.as_str())?;
            first = false;
        }
        Ok(())
    }
}

/// What the machine-client rule needs to know about one custom scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CustomScopeFlags {
    /// An admin marked it grantable to clients acting for themselves.
    pub machine_grantable: bool,
    /// Only members of some groups may be granted it.
    pub group_restricted: bool,
}

/// The custom scopes as the `client_credentials` rule sees them, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeRegistry {
    custom: std::collections::HashMap<String, CustomScopeFlags>,
}

impl ScopeRegistry {
    pub fn new(custom: impl IntoIterator<Item = (String, CustomScopeFlags)>) -> Self {
        Self {
            custom: custom.into_iter().collect(),
        }
    }

    /// Whether a client acting for itself (`client_credentials`) may hold
    /// `name`:
    /// - the user scopes (`openid`, `profile`, …): never, there is no user;
    /// - other built-ins (`latchkey:admin`): only admin-created clients
    ///   (as before; registration never grants it anyway);
    /// - a custom scope: only if an admin marked it machine-grantable, and
    ///   never a group-restricted one for a dynamically registered client;
    /// - an undefined (deleted) scope: never.
    pub fn machine_may_hold(&self, name: &str, dynamically_registered: bool) -> bool {
        if STANDARD_SCOPES.contains(&name) {
            return false;
        }
        if builtin_description(name).is_some() {
            return !dynamically_registered;
        }
        match self.custom.get(name) {
            None => false,
            Some(f) => f.machine_grantable && !(dynamically_registered && f.group_restricted),
        }
    }

    /// The first non-user scope of `set` a client acting for itself may
    /// not hold.
    pub fn first_refused<'a>(
        &self,
        set: &'a ScopeSet,
        dynamically_registered: bool,
    ) -> Option<&'a str> {
        set.iter().find(|s| {
            !STANDARD_SCOPES.contains(s) && !self.machine_may_hold(s, dynamically_registered)
        })
    }

    /// The part of `set` a client acting for itself may hold.
    pub fn machine_subset(&self, set: &ScopeSet, dynamically_registered: bool) -> ScopeSet {
        ScopeSet(
            set.0
                .iter()
                .filter(|s| self.machine_may_hold(s.as_str(), dynamically_registered))
                .cloned()
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let s = ScopeSet::parse("openid  profile read:issues openid").unwrap();
        assert_eq!(s.to_string(), "openid profile read:issues");
        assert!(s.contains("read:issues"));
        assert!(ScopeSet::parse("bad\"quote").is_err());
        assert!(ScopeSet::parse("back\\slash").is_err());
        assert!(ScopeSet::parse("é").is_err());
        assert!(ScopeSet::parse("").unwrap().is_empty());
    }

    #[test]
    fn set_operations() {
        let a = ScopeSet::parse("openid email").unwrap();
        let b = ScopeSet::parse("openid email profile").unwrap();
        assert!(a.is_subset(&b));
        assert_eq!(b.intersection(&a), a);
    }

    fn registry() -> ScopeRegistry {
        let f = |machine_grantable, group_restricted| CustomScopeFlags {
            machine_grantable,
            group_restricted,
        };
        ScopeRegistry::new([
            ("open:machine".to_owned(), f(true, false)),
            ("open:users".to_owned(), f(false, false)),
            ("billing:admin".to_owned(), f(false, true)),
            ("billing:bot".to_owned(), f(true, true)),
        ])
    }

    #[test]
    fn machine_rule_for_admin_created_clients() {
        let r = registry();
        assert!(r.machine_may_hold("open:machine", false));
        assert!(!r.machine_may_hold("open:users", false));
        assert!(!r.machine_may_hold("billing:admin", false));
        // An admin may mark a group-restricted scope for their own clients.
        assert!(r.machine_may_hold("billing:bot", false));
        assert!(r.machine_may_hold(ADMIN_SCOPE, false));
        assert!(!r.machine_may_hold("openid", false));
        assert!(!r.machine_may_hold("deleted:scope", false));
    }

    #[test]
    fn machine_rule_for_registered_clients() {
        let r = registry();
        assert!(r.machine_may_hold("open:machine", true));
        assert!(!r.machine_may_hold("open:users", true));
        assert!(!r.machine_may_hold("billing:admin", true));
        assert!(!r.machine_may_hold("billing:bot", true));
        assert!(!r.machine_may_hold(ADMIN_SCOPE, true));
    }

    #[test]
    fn machine_subset_and_refusal() {
        let r = registry();
        let set = ScopeSet::parse("openid open:machine billing:admin").unwrap();
        assert_eq!(r.machine_subset(&set, true).to_string(), "open:machine");
        assert_eq!(r.first_refused(&set, true), Some("billing:admin"));
        let fine = ScopeSet::parse("openid profile open:machine").unwrap();
        assert_eq!(r.first_refused(&fine, true), None);
    }
}
