//! Hash maps keyed by ids.
//!
//! Keys come from the network, so maps use a hasher seeded per process
//! (foldhash): cheap for 16-byte ids, and a client cannot precompute
//! colliding keys to slow the scheduler down.

/// A `HashMap` with the seeded fast hasher.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A `HashSet` with the seeded fast hasher.
pub type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// An empty [`FastMap`].
pub fn new_map<K, V>() -> FastMap<K, V> {
    FastMap::with_hasher(foldhash::fast::RandomState::default())
}

/// An empty [`FastSet`].
pub fn new_set<K>() -> FastSet<K> {
    FastSet::with_hasher(foldhash::fast::RandomState::default())
}
