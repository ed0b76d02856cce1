//! A small cache of records read from PD for authentication (API-key
//! records, users' token versions), absent ones included, so a credential
//! checked again within `ttl` costs no PD read. Bounded: once `max` entries
//! are held, expired ones are dropped, and if that is not enough, all. An
//! entry is forgotten at once when this instance changes the record; other
//! instances see the change within `ttl`. No I/O.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Cached lookups by key; `None` records an absent record.
pub struct RecordCache<V> {
    ttl: Duration,
    max: usize,
    entries: Mutex<HashMap<String, (Instant, Option<V>)>>,
}

impl<V: Clone> RecordCache<V> {
    /// A cache keeping lookups for `ttl`, at most `max` of them.
    pub fn new(ttl: Duration, max: usize) -> Self {
        Self {
            ttl,
            max: max.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Option<V>)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached lookup of `key`, if it is fresh: `Some(None)` means the
    /// record was absent.
    pub fn get(&self, key: &str) -> Option<Option<V>> {
        let entries = self.entries();
        let (fetched, record) = entries.get(key)?;
        (fetched.elapsed() < self.ttl).then(|| record.clone())
    }

    /// Records a lookup of `key`.
    pub fn put(&self, key: &str, record: Option<V>) {
        let mut entries = self.entries();
        if entries.len() >= self.max {
            let ttl = self.ttl;
            entries.retain(|_, (fetched, _)| fetched.elapsed() < ttl);
            if entries.len() >= self.max {
                entries.clear();
            }
        }
        entries.insert(key.to_owned(), (Instant::now(), record));
    }

    /// Forgets `key` (its record changed here).
    pub fn forget(&self, key: &str) {
        self.entries().remove(key);
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_records_are_cached_and_entries_expire_and_are_forgotten() {
        let cache = RecordCache::<u64>::new(Duration::from_millis(100), 10);
        assert_eq!(cache.get("a"), None, "never looked up");
        cache.put("a", None);
        cache.put("b", Some(7));
        assert_eq!(cache.get("a"), Some(None), "an absent record is remembered");
        assert_eq!(cache.get("b"), Some(Some(7)));
        cache.forget("b");
        assert_eq!(cache.get("b"), None);
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(cache.get("a"), None, "expired");
    }

    #[test]
    fn the_cache_never_holds_more_than_its_bound() {
        let cache = RecordCache::<u64>::new(Duration::from_secs(60), 100);
        for i in 0..10_000u64 {
            cache.put(&format!("key-{i}"), Some(i));
            assert!(cache.len() <= 100);
        }
        assert_eq!(cache.get("key-9999"), Some(Some(9999)));
    }
}
