//! Cache: a map shared by threads that holds at most a budget of bytes, so that staging 1,000
//! flavors keeps no more than staging ten.
//!
//! Two generations: entries go into the current one; when it would pass the budget it becomes the
//! previous one (the older previous is dropped) and a new current one starts. A hit in the
//! previous generation moves the entry back into the current one. Memory stays under twice the
//! budget, and what the flavors being staged now keep using stays cached: flavors that share
//! layers are next to each other in a flavor list.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::convert::Infallible;
use std::hash::Hash;
use std::sync::Mutex;

/// A bounded cache of values computed from keys.
pub(crate) struct Cache<K, V> {
    budget: usize,
    generations: Mutex<Generations<K, V>>,
}

struct Generations<K, V> {
    current: HashMap<K, (V, usize)>,
    previous: HashMap<K, (V, usize)>,
    /// The bytes of `current`'s entries.
    weight: usize,
}

impl<K: Hash + Eq, V: Clone> Cache<K, V> {
    /// What an entry costs besides the bytes its key and value point to: its slot in the map,
    /// twice over for the free slots a hash map keeps, and an allocation header.
    pub(crate) const SLOT: usize = 2 * std::mem::size_of::<(K, (V, usize))>() + 16;

    /// A cache holding up to about `budget` bytes in each of its two generations.
    pub(crate) fn new(budget: usize) -> Cache<K, V> {
        Cache {
            budget,
            generations: Mutex::new(Generations {
                current: HashMap::new(),
                previous: HashMap::new(),
                weight: 0,
            }),
        }
    }

    /// A cache that keeps everything, for runs whose inputs are all needed again (a git
    /// revision read through one process).
    pub(crate) fn unbounded() -> Cache<K, V> {
        Cache::new(usize::MAX)
    }

    /// The value of `key`, computed and kept on first use; `weigh` tells the bytes that an entry's
    /// key and value point to (their heap allocations), the cache adds [`Cache::SLOT`]. The
    /// lock is not held while computing, so two threads may compute the same value once each.
    pub(crate) fn get_or_compute<Q, E>(
        &self,
        key: &Q,
        weigh: impl FnOnce(&Q, &V) -> usize,
        compute: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E>
    where
        K: Borrow<Q>,
        Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
    {
        {
            let mut generations = self.generations.lock().unwrap();
            if let Some((value, _)) = generations.current.get(key) {
                return Ok(value.clone());
            }
            if let Some((key, (value, weight))) = generations.previous.remove_entry(key) {
                let found = value.clone();
                generations.insert(key, value, weight, self.budget);
                return Ok(found);
            }
        }
        let value = compute()?;
        let weight = weigh(key, &value) + Self::SLOT;
        self.generations
            .lock()
            .unwrap()
            .insert(key.to_owned(), value.clone(), weight, self.budget);
        Ok(value)
    }

    /// Like [`Cache::get_or_compute`], for a computation that cannot fail.
    pub(crate) fn get_or_insert_with<Q>(
        &self,
        key: &Q,
        weigh: impl FnOnce(&Q, &V) -> usize,
        compute: impl FnOnce() -> V,
    ) -> V
    where
        K: Borrow<Q>,
        Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
    {
        match self.get_or_compute(key, weigh, || Ok::<V, Infallible>(compute())) {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// The bytes the cache holds now, by its own weighing.
    #[cfg(test)]
    pub(crate) fn weight(&self) -> usize {
        let generations = self.generations.lock().unwrap();
        generations.weight + generations.previous.values().map(|(_, w)| w).sum::<usize>()
    }
}

impl<K: Hash + Eq, V> Generations<K, V> {
    fn insert(&mut self, key: K, value: V, weight: usize, budget: usize) {
        if self.weight.saturating_add(weight) > budget && !self.current.is_empty() {
            self.previous = std::mem::take(&mut self.current);
            self.weight = 0;
        }
        self.weight += weight;
        if let Some((_, old)) = self.current.insert(key, (value, weight)) {
            self.weight -= old;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn get(cache: &Cache<String, usize>, key: &str, computed: &Cell<usize>) -> usize {
        cache
            .get_or_compute(
                key,
                |_, _| 100 - Cache::<String, usize>::SLOT,
                || {
                    computed.set(computed.get() + 1);
                    Ok::<_, ()>(key.len())
                },
            )
            .unwrap()
    }

    #[test]
    fn keeps_what_is_used_within_twice_the_budget() {
        // Each entry weighs 100 bytes: three fit in a generation.
        let cache = Cache::new(300);
        let computed = Cell::new(0);
        for key in ["a", "bb", "ccc"] {
            assert_eq!(get(&cache, key, &computed), key.len());
        }
        assert_eq!((computed.get(), cache.weight()), (3, 300));
        // A fourth starts a new generation; the first three are still found, and move back.
        assert_eq!(get(&cache, "dddd", &computed), 4);
        assert_eq!(get(&cache, "a", &computed), 1);
        assert_eq!((computed.get(), cache.weight()), (4, 400));
        // Two more fill the current generation (dddd, a, e) and start another (f): bb and ccc,
        // unused for two generations, are dropped and computed again.
        get(&cache, "e", &computed);
        get(&cache, "f", &computed);
        assert_eq!(computed.get(), 6);
        assert!(cache.weight() <= 600);
        get(&cache, "a", &computed);
        assert_eq!(computed.get(), 6);
        get(&cache, "bb", &computed);
        assert_eq!(computed.get(), 7);
        for round in 0..100 {
            get(&cache, &format!("k{round}"), &computed);
            assert!(cache.weight() <= 600, "{} bytes", cache.weight());
        }
    }

    #[test]
    fn threads_sharing_a_small_cache_get_each_key_s_own_value() {
        // A budget of a few entries, so that generations turn over all the time.
        let cache: Cache<String, String> = Cache::new(4 * Cache::<String, String>::SLOT);
        let computed = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for thread in 0..4 {
                let (cache, computed) = (&cache, &computed);
                scope.spawn(move || {
                    for round in 0..2_000 {
                        let key = format!("k{}", (round * (thread + 1)) % 37);
                        let value = cache.get_or_insert_with(
                            key.as_str(),
                            |key, value| key.len() + value.len(),
                            || {
                                computed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                format!("value of {key}")
                            },
                        );
                        assert_eq!(value, format!("value of {key}"));
                        assert!(cache.weight() <= 2 * 4 * Cache::<String, String>::SLOT + 64);
                    }
                });
            }
        });
        // Evicted keys were computed again.
        let computed = computed.into_inner();
        assert!(computed > 37, "{computed} computations");
    }

    #[test]
    fn a_failed_computation_is_not_kept() {
        let cache: Cache<String, usize> = Cache::new(1000);
        let result: Result<usize, &str> = cache.get_or_compute("a", |_, _| 1, || Err("no"));
        assert_eq!(result, Err("no"));
        assert_eq!(cache.weight(), 0);
        let result: Result<usize, &str> = cache.get_or_compute("a", |_, _| 1, || Ok(7));
        assert_eq!(result, Ok(7));
    }
}
