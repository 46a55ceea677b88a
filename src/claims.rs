//! The idempotency claims, held in memory: which record holds each `(source, key)` inside the window.
//!
//! A claim needs no storage of its own: the record it points to carries its source, key, body hash and
//! receipt time, so the claim is on disk exactly when its record is, and admitting an alert is one sled
//! write. The journal rebuilds the claims from its records when it opens (`journal::admission`).
//! A claim is the record's id (a ULID, whose time part is the receipt time: the claim's age), under a
//! 128-bit hash of `source \0 key`: 32 bytes (100,000 claims: 4 MB with the map's own overhead). Whether a
//! repeat carries the same body is read from the record.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use sha2::{Digest, Sha256};
use ulid::Ulid;

/// A `(source, key)` pair, hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClaimKey(u128);

impl ClaimKey {
    pub fn new(source: &str, key: &str) -> ClaimKey {
        let mut h = Sha256::new();
        h.update(source.as_bytes());
        h.update([0u8]);
        h.update(key.as_bytes());
        let digest = h.finalize();
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        ClaimKey(u128::from_le_bytes(first))
    }
}

#[derive(Debug, Default)]
pub struct Claims {
    map: Mutex<HashMap<ClaimKey, Ulid>>,
}

impl Claims {
    fn map(&self) -> MutexGuard<'_, HashMap<ClaimKey, Ulid>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The record holding `key`.
    pub fn get(&self, key: ClaimKey) -> Option<Ulid> {
        self.map().get(&key).copied()
    }

    /// Sets the claim on `key` to `new` if it is still `expected` (`None`: unclaimed); otherwise returns the
    /// claim found. Of many callers racing for a free key, exactly one succeeds.
    pub fn swap(
        &self,
        key: ClaimKey,
        expected: Option<Ulid>,
        new: Ulid,
    ) -> Result<(), Option<Ulid>> {
        let mut map = self.map();
        let current = map.get(&key).copied();
        if current != expected {
            return Err(current);
        }
        map.insert(key, new);
        Ok(())
    }

    /// Gives `key` to record `id` outside admission (rebuilding at open, importing) unless a newer record
    /// received at or after `cutoff_ms` holds it: the newest record inside the window holds a key.
    pub fn offer(&self, key: ClaimKey, id: Ulid, cutoff_ms: u64) {
        let mut map = self.map();
        match map.get(&key) {
            Some(holder) if *holder >= id && holder.timestamp_ms() >= cutoff_ms => {}
            _ => {
                map.insert(key, id);
            }
        }
    }

    /// Removes the claim on `key` if record `id` still holds it. Returns whether it did.
    pub fn release(&self, key: ClaimKey, id: Ulid) -> bool {
        let mut map = self.map();
        if map.get(&key) == Some(&id) {
            map.remove(&key);
            return true;
        }
        false
    }

    /// Removes the claims of records received before `cutoff_ms`; returns how many.
    pub fn expire(&self, cutoff_ms: u64) -> usize {
        let mut map = self.map();
        let before = map.len();
        map.retain(|_, id| id.timestamp_ms() >= cutoff_ms);
        // Give the memory of a burst back once it has aged out.
        if map.capacity() > 4 * map.len().max(1024) {
            map.shrink_to_fit();
        }
        before - map.len()
    }

    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_tell_sources_and_keys_apart() {
        assert_eq!(ClaimKey::new("tv", "k"), ClaimKey::new("tv", "k"));
        assert_ne!(ClaimKey::new("tv", "k"), ClaimKey::new("tv", "k2"));
        assert_ne!(ClaimKey::new("tv", "k"), ClaimKey::new("signals", "k"));
        // The separator keeps ("a", "bc") and ("ab", "c") apart.
        assert_ne!(ClaimKey::new("a", "bc"), ClaimKey::new("ab", "c"));
    }

    #[test]
    fn swap_admits_one_claim_and_release_only_the_holders() {
        let claims = Claims::default();
        let k = ClaimKey::new("tv", "k");
        let (a, b) = (Ulid::from_parts(1, 1), Ulid::from_parts(2, 2));
        assert_eq!(claims.swap(k, None, a), Ok(()));
        assert_eq!(claims.swap(k, None, b), Err(Some(a)));
        assert!(!claims.release(k, b), "b does not hold the key");
        // Taken over: only with the claim the caller saw.
        assert_eq!(claims.swap(k, Some(b), b), Err(Some(a)));
        assert_eq!(claims.swap(k, Some(a), b), Ok(()));
        assert_eq!(claims.get(k), Some(b));
        assert!(!claims.release(k, a));
        assert!(claims.release(k, b));
        assert!(claims.is_empty());
    }

    #[test]
    fn an_offer_goes_to_the_newest_live_record() {
        let claims = Claims::default();
        let k = ClaimKey::new("tv", "k");
        let (old, new) = (Ulid::from_parts(10, 1), Ulid::from_parts(20, 1));
        claims.offer(k, new, 0);
        claims.offer(k, old, 0);
        assert_eq!(claims.get(k), Some(new), "an older record takes nothing");
        claims.offer(k, Ulid::from_parts(30, 1), 0);
        assert_eq!(claims.get(k), Some(Ulid::from_parts(30, 1)));
        // A holder outside the window (received before the cutoff) gives way to any record.
        claims.offer(k, old, 31);
        assert_eq!(claims.get(k), Some(old));
    }

    #[test]
    fn expire_removes_only_older_claims() {
        let claims = Claims::default();
        for i in 0..10u64 {
            let k = ClaimKey::new("tv", &i.to_string());
            claims.offer(k, Ulid::from_parts(i, 0), 0);
        }
        assert_eq!(claims.expire(4), 4);
        assert_eq!(claims.len(), 6);
        assert!(claims.get(ClaimKey::new("tv", "3")).is_none());
        assert!(claims.get(ClaimKey::new("tv", "4")).is_some());
    }
}
