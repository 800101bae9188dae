//! Per-container caches for what is read often and changes rarely. A Lambda container serves one event
//! at a time and lives for minutes to hours, so a small in-process map with a TTL and a size bound
//! saves DynamoDB reads without any shared cache service. Hits and misses are counted process-wide and
//! published per invocation (see `metrics::invocation`), which gives the hit ratio.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static HITS: AtomicU64 = AtomicU64::new(0);
static MISSES: AtomicU64 = AtomicU64::new(0);

/// Hits and misses of every cache in this process so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
}

impl std::ops::Sub for CacheStats {
    type Output = CacheStats;
    fn sub(self, earlier: CacheStats) -> CacheStats {
        CacheStats {
            hits: self.hits.saturating_sub(earlier.hits),
            misses: self.misses.saturating_sub(earlier.misses),
        }
    }
}

pub fn stats() -> CacheStats {
    CacheStats {
        hits: HITS.load(Ordering::Relaxed),
        misses: MISSES.load(Ordering::Relaxed),
    }
}

struct Entry<V> {
    value: V,
    stored: Instant,
}

/// String keys to cloneable values (wrap big values in `Arc`), each kept at most `ttl`, at most
/// `capacity` of them.
pub struct Cache<V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, Entry<V>>>,
}

impl<V: Clone> Cache<V> {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Cache {
            ttl,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The value under `key` if it is younger than the TTL.
    pub fn get(&self, key: &str) -> Option<V> {
        self.get_if(key, |_| true)
    }

    /// The value under `key` if it is younger than the TTL and `still_valid` accepts it (e.g. it was
    /// read at the version the caller now knows). A rejected or expired entry is dropped: it is a miss.
    pub fn get_if(&self, key: &str, still_valid: impl FnOnce(&V) -> bool) -> Option<V> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let found = match entries.get(key) {
            Some(entry) if entry.stored.elapsed() < self.ttl && still_valid(&entry.value) => Some(entry.value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        };
        match found {
            Some(_) => HITS.fetch_add(1, Ordering::Relaxed),
            None => MISSES.fetch_add(1, Ordering::Relaxed),
        };
        found
    }

    pub fn insert(&self, key: impl Into<String>, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let key = key.into();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            // Full: drop what has expired, and if that frees nothing, the oldest entry. A linear scan,
            // but only when full, over a few thousand entries at most.
            let ttl = self.ttl;
            entries.retain(|_, entry| entry.stored.elapsed() < ttl);
            if entries.len() >= self.capacity {
                if let Some(oldest) = entries.iter().min_by_key(|(_, e)| e.stored).map(|(k, _)| k.clone()) {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(
            key,
            Entry {
                value,
                stored: Instant::now(),
            },
        );
    }

    /// Forgets `key`: after a write this container made, so its own next read is fresh.
    pub fn remove(&self, key: &str) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_until_the_ttl_passes() {
        let cache = Cache::new(Duration::from_millis(50), 10);
        let before = stats();
        assert_eq!(cache.get("a"), None);
        cache.insert("a", 1);
        assert_eq!(cache.get("a"), Some(1));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get("a"), None, "expired");
        assert!(cache.is_empty(), "an expired entry is dropped when seen");
        let counted = stats() - before;
        // Other tests in this process count too: at least ours.
        assert!(counted.hits >= 1 && counted.misses >= 2, "{counted:?}");
    }

    #[test]
    fn a_rejected_entry_is_a_miss_and_is_dropped() {
        let cache = Cache::new(Duration::from_secs(60), 10);
        cache.insert("conv", (3u64, "members"));
        assert_eq!(cache.get_if("conv", |(version, _)| *version == 3), Some((3, "members")));
        assert_eq!(cache.get_if("conv", |(version, _)| *version == 4), None);
        assert_eq!(cache.get("conv"), None);
    }

    #[test]
    fn never_holds_more_than_its_capacity() {
        let cache = Cache::new(Duration::from_secs(60), 3);
        for i in 0..10 {
            cache.insert(format!("k{i}"), i);
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get("k9"), Some(9), "the newest stays");
        assert_eq!(cache.get("k0"), None, "the oldest went first");
        cache.remove("k9");
        assert_eq!(cache.get("k9"), None);
    }
}
