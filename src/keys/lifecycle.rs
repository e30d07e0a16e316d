//! Key lifecycle rules, as a pure function of the keys and the clock:
//! `next` (published, not signing) -> `active` (signing) -> `retired`
//! (published for verification) -> removed.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use time::{Duration, OffsetDateTime};

use super::SigningAlg;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyState {
    Next,
    Active,
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
        }
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "next" => Ok(KeyState::Next),
            "active" => Ok(KeyState::Active),
            "retired" => Ok(KeyState::Retired),
            other => Err(format!("unknown key state {other:?}")),
        }
    }
}

/// What the rules need to know about one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFacts {
    pub kid: String,
    pub alg: SigningAlg,
    pub state: KeyState,
    pub created_at: OffsetDateTime,
    pub activate_after: OffsetDateTime,
    pub activated_at: Option<OffsetDateTime>,
    pub retired_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub struct LifecyclePolicy {
    /// Algorithms that must always have an active key.
    pub algorithms: Vec<SigningAlg>,
    pub prepublication_delay: Duration,
    /// How long a retired key stays published.
    pub retention: Duration,
    pub rotate_every: Option<Duration>,
}

impl LifecyclePolicy {
    pub fn from_config(c: &crate::config::Config) -> Self {
        let secs = |s: u64| Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX));
        let longest_token = c
            .tokens
            .id_token_ttl_secs
            .max(c.tokens.access_token_ttl_secs);
        Self {
            algorithms: c.keys.algorithms.clone(),
            prepublication_delay: secs(c.keys.prepublication_delay_secs),
            retention: secs(longest_token.saturating_add(c.keys.retirement_margin_secs)),
            rotate_every: (c.keys.rotate_every_secs > 0).then(|| secs(c.keys.rotate_every_secs)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Activate {
        kid: String,
    },
    Retire {
        kid: String,
    },
    Remove {
        kid: String,
    },
    /// Create a key; `activate_now` when an algorithm has nothing to sign with.
    Generate {
        alg: SigningAlg,
        activate_now: bool,
    },
}

/// The transitions due at `now`, in the order to apply them.
pub fn plan(keys: &[KeyFacts], now: OffsetDateTime, policy: &LifecyclePolicy) -> Vec<Transition> {
    let mut out = Vec::new();
    let algs: BTreeSet<SigningAlg> = keys
        .iter()
        .map(|k| k.alg)
        .chain(policy.algorithms.iter().copied())
        .collect();
    for alg in algs {
        let of_alg: Vec<&KeyFacts> = keys.iter().filter(|k| k.alg == alg).collect();
        let active: Vec<&KeyFacts> = of_alg
            .iter()
            .copied()
            .filter(|k| k.state == KeyState::Active)
            .collect();
        let mut nexts: Vec<&KeyFacts> = of_alg
            .iter()
            .copied()
            .filter(|k| k.state == KeyState::Next)
            .collect();
        nexts.sort_by_key(|k| (k.activate_after, k.created_at));
        let due: Vec<&KeyFacts> = nexts
            .iter()
            .copied()
            .filter(|k| k.activate_after <= now)
            .collect();
        let required = policy.algorithms.contains(&alg);

        if let Some(newest_due) = due.last() {
            // The newest due key takes over; everything it replaces retires.
            out.push(Transition::Activate {
                kid: newest_due.kid.clone(),
            });
            for k in active
                .iter()
                .copied()
                .chain(due[..due.len() - 1].iter().copied())
            {
                out.push(Transition::Retire { kid: k.kid.clone() });
            }
        } else if active.is_empty() && required {
            match nexts.last() {
                // Nothing signs: a pending key must start now.
                Some(pending) => out.push(Transition::Activate {
                    kid: pending.kid.clone(),
                }),
                None => out.push(Transition::Generate {
                    alg,
                    activate_now: true,
                }),
            }
        } else if let (Some(every), true) = (policy.rotate_every, nexts.is_empty() && required) {
            let newest_active = active.iter().filter_map(|k| k.activated_at).max();
            if newest_active.is_some_and(|t| t + every <= now) {
                out.push(Transition::Generate {
                    alg,
                    activate_now: false,
                });
            }
        }
        // More than one active key of an algorithm: keep the newest.
        if due.is_empty() && active.len() > 1 {
            let mut sorted = active.clone();
            sorted.sort_by_key(|k| (k.activated_at, k.created_at));
            for k in &sorted[..sorted.len() - 1] {
                out.push(Transition::Retire { kid: k.kid.clone() });
            }
        }
        for k in of_alg.iter().filter(|k| k.state == KeyState::Retired) {
            if k.retired_at.is_some_and(|t| t + policy.retention <= now) {
                out.push(Transition::Remove { kid: k.kid.clone() });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap() + Duration::hours(h)
    }

    fn policy() -> LifecyclePolicy {
        LifecyclePolicy {
            algorithms: vec![SigningAlg::RS256],
            prepublication_delay: Duration::hours(1),
            retention: Duration::hours(2),
            rotate_every: None,
        }
    }

    fn key(kid: &str, state: KeyState, created: i64) -> KeyFacts {
        KeyFacts {
            kid: kid.into(),
            alg: SigningAlg::RS256,
            state,
            created_at: t(created),
            activate_after: t(created + 1),
            activated_at: (state != KeyState::Next).then(|| t(created + 1)),
            retired_at: None,
        }
    }

    #[test]
    fn empty_store_gets_an_active_key_per_algorithm() {
        let mut p = policy();
        p.algorithms.push(SigningAlg::ES256);
        assert_eq!(
            plan(&[], t(0), &p),
            vec![
                Transition::Generate {
                    alg: SigningAlg::RS256,
                    activate_now: true
                },
                Transition::Generate {
                    alg: SigningAlg::ES256,
                    activate_now: true
                },
            ]
        );
    }

    #[test]
    fn next_waits_for_its_time_then_replaces_active() {
        let keys = vec![key("a", KeyState::Active, -10), key("b", KeyState::Next, 0)];
        assert!(
            plan(&keys, t(0), &policy()).is_empty(),
            "published but not yet signing"
        );
        assert_eq!(
            plan(&keys, t(1), &policy()),
            vec![
                Transition::Activate { kid: "b".into() },
                Transition::Retire { kid: "a".into() }
            ]
        );
    }

    #[test]
    fn retired_keys_are_removed_after_retention() {
        let mut r = key("a", KeyState::Retired, -10);
        r.retired_at = Some(t(0));
        let keys = vec![r, key("b", KeyState::Active, -5)];
        assert!(plan(&keys, t(1), &policy()).is_empty());
        assert_eq!(
            plan(&keys, t(2), &policy()),
            vec![Transition::Remove { kid: "a".into() }]
        );
    }

    #[test]
    fn scheduled_rotation_creates_one_next_key() {
        let mut p = policy();
        p.rotate_every = Some(Duration::hours(24));
        let keys = vec![key("a", KeyState::Active, 0)];
        assert!(plan(&keys, t(20), &p).is_empty());
        assert_eq!(
            plan(&keys, t(25), &p),
            vec![Transition::Generate {
                alg: SigningAlg::RS256,
                activate_now: false
            }]
        );
        let with_next = vec![key("a", KeyState::Active, 0), key("b", KeyState::Next, 25)];
        assert!(
            plan(&with_next, t(25), &p).is_empty(),
            "one pending key is enough"
        );
    }

    #[test]
    fn without_an_active_key_a_pending_one_starts_now() {
        let keys = vec![key("b", KeyState::Next, 0)];
        assert_eq!(
            plan(&keys, t(0), &policy()),
            vec![Transition::Activate { kid: "b".into() }]
        );
    }

    #[test]
    fn unconfigured_algorithms_are_left_to_expire() {
        let keys = vec![KeyFacts {
            alg: SigningAlg::ES256,
            ..key("e", KeyState::Active, 0)
        }];
        let out = plan(&keys, t(5), &policy());
        assert_eq!(
            out,
            vec![Transition::Generate {
                alg: SigningAlg::RS256,
                activate_now: true
            }]
        );
    }
}
