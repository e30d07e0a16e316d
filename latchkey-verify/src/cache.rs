//! The introspection answers a verifier remembers, so a token used again
//! soon costs no call to the issuer. Keyed by the SHA-256 of the token:
//! no raw token is ever kept. Positive answers live for the configured
//! time but never past the token's `exp`; negative ones (the issuer said
//! inactive, or the answer failed a check) live briefly; failures to ask
//! at all are never kept. Lifetimes count from when the request started,
//! and an answer never replaces one from a request that started later.
//! At most `capacity` entries: when full, expired entries go first, then
//! a tenth of the capacity that would expire soonest, so the cost of
//! making room is spread over the insertions that follow.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::claims::AccessToken;
use crate::error::VerifyError;

/// SHA-256 of a token.
pub(crate) type Key = [u8; 32];

pub(crate) fn key(token: &str) -> Key {
    Sha256::digest(token.as_bytes()).into()
}

pub(crate) type Answer = Result<AccessToken, VerifyError>;

struct Entry {
    answer: Answer,
    /// When the request that gave this answer started.
    started: Instant,
    until: Instant,
}

/// How long answers are kept.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lifetimes {
    pub positive: Duration,
    pub negative: Duration,
}

impl Lifetimes {
    /// How long `answer` may be kept at `unix_now`: a positive one for
    /// `positive` but not past its `exp`; a refusal for `negative`; an
    /// answer that was no judgement (the issuer unavailable) not at all.
    pub(crate) fn of(&self, answer: &Answer, unix_now: i64) -> Duration {
        match answer {
            Ok(token) => {
                let exp = token
                    .expires_at
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let left = exp.saturating_sub(u64::try_from(unix_now).unwrap_or(u64::MAX));
                self.positive.min(Duration::from_secs(left))
            }
            Err(e) if e.is_unavailable() => Duration::ZERO,
            Err(_) => self.negative,
        }
    }
}

pub(crate) struct TokenCache {
    entries: Mutex<HashMap<Key, Entry>>,
    capacity: usize,
    lifetimes: Lifetimes,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .field("lifetimes", &self.lifetimes)
            .finish()
    }
}

impl TokenCache {
    pub(crate) fn new(capacity: usize, lifetimes: Lifetimes) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
            lifetimes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// The answer kept for `key`, unless it has expired by `now`.
    pub(crate) fn get(&self, key: &Key, now: Instant) -> Option<Answer> {
        let mut entries = self.lock();
        match entries.get(key) {
            Some(e) if now < e.until => Some(e.answer.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `answer`, from a request that started at `started`
    /// (`unix_started` in Unix time), for as long as [`Lifetimes::of`]
    /// allows, counted from that start. Unless a request that started
    /// later has already answered: an older answer never replaces a newer
    /// one, so a slow "active" cannot undo a quicker "inactive" that came
    /// after it.
    pub(crate) fn put(&self, key: Key, answer: &Answer, started: Instant, unix_started: i64) {
        let ttl = self.lifetimes.of(answer, unix_started);
        if ttl.is_zero() || self.capacity == 0 {
            return;
        }
        let mut entries = self.lock();
        match entries.get(&key) {
            Some(kept) if kept.started > started => return,
            Some(_) => {}
            None if entries.len() >= self.capacity => {
                make_room(&mut entries, self.capacity, started)
            }
            None => {}
        }
        entries.insert(
            key,
            Entry {
                answer: answer.clone(),
                started,
                until: started + ttl,
            },
        );
    }
}

/// Frees at least a tenth of `capacity` (one entry at the least): expired
/// entries first, then those that would expire soonest. The scan is
/// O(entries), so it runs at most once per that many insertions.
fn make_room(entries: &mut HashMap<Key, Entry>, capacity: usize, now: Instant) {
    entries.retain(|_, e| now < e.until);
    let keep = capacity.saturating_sub((capacity / 10).max(1));
    if entries.len() <= keep {
        return;
    }
    let mut by_expiry: Vec<(Instant, Key)> = entries.iter().map(|(k, e)| (e.until, *k)).collect();
    let excess = by_expiry.len() - keep;
    // The `excess` soonest to expire end up first (in any order).
    by_expiry.select_nth_unstable(excess - 1);
    for (_, k) in &by_expiry[..excess] {
        entries.remove(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::TokenKind;

    const NOW: i64 = 1_800_000_000;

    fn token(exp: i64) -> AccessToken {
        AccessToken {
            kind: TokenKind::PersonalAccessToken,
            subject: "u1".into(),
            client_id: None,
            scopes: ["read:notes".to_owned()].into(),
            groups: Default::default(),
            issuer: "https://id.example".into(),
            audience: Vec::new(),
            jwt_id: None,
            expires_at: UNIX_EPOCH + Duration::from_secs(exp as u64),
            issued_at: UNIX_EPOCH + Duration::from_secs((NOW - 100) as u64),
            auth_time: None,
            claims: Default::default(),
        }
    }

    fn lifetimes() -> Lifetimes {
        Lifetimes {
            positive: Duration::from_secs(60),
            negative: Duration::from_secs(5),
        }
    }

    #[test]
    fn positive_lifetime_is_bounded_by_exp() {
        let l = lifetimes();
        assert_eq!(l.of(&Ok(token(NOW + 3600)), NOW), Duration::from_secs(60));
        assert_eq!(l.of(&Ok(token(NOW + 20)), NOW), Duration::from_secs(20));
        assert_eq!(l.of(&Ok(token(NOW)), NOW), Duration::ZERO);
        // Accepted within the leeway after exp: not kept at all.
        assert_eq!(l.of(&Ok(token(NOW - 10)), NOW), Duration::ZERO);
    }

    #[test]
    fn refusals_are_kept_briefly_and_outages_never() {
        let l = lifetimes();
        for refusal in [
            VerifyError::Inactive,
            VerifyError::WrongIssuer,
            VerifyError::Expired,
        ] {
            assert_eq!(l.of(&Err(refusal), NOW), Duration::from_secs(5));
        }
        for outage in [
            VerifyError::IntrospectionUnavailable,
            VerifyError::IntrospectionRefused,
            VerifyError::KeysUnavailable,
        ] {
            assert_eq!(l.of(&Err(outage), NOW), Duration::ZERO);
        }
    }

    #[test]
    fn entries_expire_at_their_lifetime() {
        let cache = TokenCache::new(10, lifetimes());
        let t0 = Instant::now();
        let (short, long, bad) = (key("lkp_short"), key("lkp_long"), key("lkp_bad"));
        cache.put(short, &Ok(token(NOW + 20)), t0, NOW);
        cache.put(long, &Ok(token(NOW + 3600)), t0, NOW);
        cache.put(bad, &Err(VerifyError::Inactive), t0, NOW);
        cache.put(
            key("lkp_down"),
            &Err(VerifyError::IntrospectionUnavailable),
            t0,
            NOW,
        );
        assert_eq!(cache.len(), 3, "the outage is not kept");

        let at = |s| t0 + Duration::from_secs(s);
        assert_eq!(cache.get(&bad, at(4)), Some(Err(VerifyError::Inactive)));
        assert_eq!(cache.get(&bad, at(5)), None);
        assert!(cache.get(&short, at(19)).is_some_and(|a| a.is_ok()));
        assert_eq!(cache.get(&short, at(20)), None, "not past exp");
        assert!(cache.get(&long, at(59)).is_some_and(|a| a.is_ok()));
        assert_eq!(cache.get(&long, at(60)), None);
        assert_eq!(cache.len(), 0, "expired entries are dropped when read");
    }

    #[test]
    fn a_full_cache_evicts_expired_then_soonest() {
        let cache = TokenCache::new(3, lifetimes());
        let t0 = Instant::now();
        cache.put(key("a"), &Ok(token(NOW + 3600)), t0, NOW);
        cache.put(key("b"), &Err(VerifyError::Inactive), t0, NOW);
        cache.put(key("c"), &Ok(token(NOW + 30)), t0, NOW);
        // Full: "b" (5 s) would expire first and goes.
        cache.put(key("d"), &Ok(token(NOW + 3600)), t0, NOW);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(&key("b"), t0), None);
        for k in ["a", "c", "d"] {
            assert!(cache.get(&key(k), t0).is_some(), "{k}");
        }
        // Later, "c" has expired: it makes room, the others stay.
        let later = t0 + Duration::from_secs(40);
        cache.put(key("e"), &Ok(token(NOW + 3600)), later, NOW + 40);
        for k in ["a", "d", "e"] {
            assert!(cache.get(&key(k), later).is_some(), "{k}");
        }
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn an_older_request_never_replaces_a_newer_answer() {
        let cache = TokenCache::new(10, lifetimes());
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(500);
        let k = key("lkp_revoked");
        // A slow request started at t0 said active; one started at t1
        // (after the revocation) said inactive and came back first.
        cache.put(k, &Err(VerifyError::Inactive), t1, NOW);
        cache.put(k, &Ok(token(NOW + 3600)), t0, NOW);
        assert_eq!(cache.get(&k, t1), Some(Err(VerifyError::Inactive)));
        // The other way round, the later answer wins too.
        let k = key("lkp_other");
        cache.put(k, &Ok(token(NOW + 3600)), t0, NOW);
        cache.put(k, &Err(VerifyError::Inactive), t1, NOW);
        assert_eq!(cache.get(&k, t1), Some(Err(VerifyError::Inactive)));
        // Lifetimes count from the request's start: 5 s after t1.
        assert_eq!(cache.get(&k, t1 + Duration::from_secs(5)), None);
    }

    #[test]
    fn a_full_cache_makes_room_in_batches() {
        let cache = TokenCache::new(100, lifetimes());
        let t0 = Instant::now();
        // Entry i expires after 10 + i seconds (positive, bounded by exp).
        for i in 0..100 {
            cache.put(key(&format!("t{i}")), &Ok(token(NOW + 10 + i)), t0, NOW);
        }
        assert_eq!(cache.len(), 100);
        // Full: one insertion frees a tenth, the ten soonest to expire.
        cache.put(key("new"), &Ok(token(NOW + 3600)), t0, NOW);
        assert_eq!(cache.len(), 91);
        for i in 0..100 {
            let kept = cache.get(&key(&format!("t{i}")), t0).is_some();
            assert_eq!(kept, i >= 10, "t{i}");
        }
        // The next nine insertions need no eviction at all.
        for i in 0..9 {
            cache.put(key(&format!("more{i}")), &Ok(token(NOW + 3600)), t0, NOW);
        }
        assert_eq!(cache.len(), 100);
        // Later, expired entries are what goes, when they are enough.
        let later = t0 + Duration::from_secs(35);
        cache.put(key("last"), &Ok(token(NOW + 3600)), later, NOW + 35);
        assert_eq!(cache.len(), 100 - 16 + 1, "t10..t25 had expired");
        assert!(cache.get(&key("t25"), later).is_none());
        assert!(cache.get(&key("t26"), later).is_some());
        // Replacing a kept entry never evicts anything.
        cache.put(key("last"), &Err(VerifyError::Inactive), later, NOW + 35);
        assert_eq!(cache.len(), 85);
    }

    #[test]
    fn zero_lifetimes_or_capacity_keep_nothing() {
        let none = TokenCache::new(
            10,
            Lifetimes {
                positive: Duration::ZERO,
                negative: Duration::ZERO,
            },
        );
        let t0 = Instant::now();
        none.put(key("a"), &Ok(token(NOW + 3600)), t0, NOW);
        none.put(key("b"), &Err(VerifyError::Inactive), t0, NOW);
        assert_eq!(none.len(), 0);
        let tiny = TokenCache::new(0, lifetimes());
        tiny.put(key("a"), &Ok(token(NOW + 3600)), t0, NOW);
        assert_eq!(tiny.len(), 0);
    }

    #[test]
    fn keys_are_sha256_of_the_token() {
        // FIPS 180-2 test vector.
        assert_eq!(
            key("abc")[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "SHA-256(\"abc\") starts ba7816bf"
        );
        assert_ne!(key("lkp_a"), key("lkp_A"));
    }
}
