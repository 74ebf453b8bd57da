//! Recent lookups kept for a moment: a caller's key or a node's token seen a second ago is taken
//! from memory instead of the database, which every request would otherwise ask (on SQLite,
//! through its one connection, the same that writes jobs).
//!
//! Only what was found is kept (an unknown secret is always looked up), each entry for a fixed
//! time after it was read. What this process changes it forgets at once (a key it revokes);
//! what another process changes (`sgl-grid admin`, another replica) is seen within that time.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Entries kept at most; past it the map starts over (a flood of distinct secrets cannot grow it).
const MAX_ENTRIES: usize = 100_000;

/// Values found under a secret's hash, each kept `ttl_ms` after it was read.
#[derive(Debug)]
pub struct Recent<V> {
    ttl_ms: i64,
    entries: Mutex<HashMap<String, (V, i64)>>,
}

impl<V: Clone> Recent<V> {
    /// Keeps each entry `ttl_ms`.
    pub fn new(ttl_ms: i64) -> Self {
        Self { ttl_ms, entries: Mutex::new(HashMap::new()) }
    }

    /// The value read under `key` less than the keeping time before `now_ms`.
    pub fn get(&self, key: &str, now_ms: i64) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let (value, read_at) = entries.get(key)?;
        (now_ms.saturating_sub(*read_at) < self.ttl_ms && now_ms >= *read_at).then(|| value.clone())
    }

    /// Keeps `value`, read under `key` at `now_ms`.
    pub fn put(&self, key: String, value: V, now_ms: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (value, now_ms));
    }

    /// Forgets every value `stale` picks.
    pub fn forget(&self, stale: impl Fn(&V) -> bool) {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).retain(|_, (value, _)| !stale(value));
    }
}

#[cfg(test)]
mod tests {
    //! Entries expire, are forgotten on demand, and never outgrow the cap.

    use super::*;

    #[test]
    fn an_entry_lives_for_its_keeping_time_and_is_forgotten_on_demand() {
        let recent = Recent::new(1_000);
        recent.put("a".into(), 1, 10_000);
        recent.put("b".into(), 2, 10_000);
        assert_eq!(recent.get("a", 10_999), Some(1));
        assert_eq!(recent.get("a", 11_000), None, "expired");
        assert_eq!(recent.get("a", 9_999), None, "a clock that went back does not trust it");
        assert_eq!(recent.get("c", 10_000), None);
        recent.forget(|value| *value == 2);
        assert_eq!((recent.get("a", 10_001), recent.get("b", 10_001)), (Some(1), None));
    }

    #[test]
    fn a_flood_of_entries_starts_the_map_over() {
        let recent = Recent::new(1_000);
        for n in 0..=MAX_ENTRIES {
            recent.put(n.to_string(), n, 0);
        }
        assert_eq!(recent.get("0", 1), None);
        assert_eq!(recent.get(&MAX_ENTRIES.to_string(), 1), Some(MAX_ENTRIES));
    }
}
