//! Shard: one deterministic slice `I/N` of a list of flavors, for spreading a run over machines.

use std::fmt;

/// Shard `index` (from 1) of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shard {
    pub(crate) index: usize,
    pub(crate) count: usize,
}

impl Shard {
    /// Parses `I/N` with 1 ≤ I ≤ N.
    pub(crate) fn parse(text: &str) -> Result<Shard, String> {
        let bad = || format!("invalid shard `{text}`: expected `I/N` with 1 <= I <= N, e.g. `1/4`");
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let index: usize = index.trim().parse().map_err(|_| bad())?;
        let count: usize = count.trim().parse().map_err(|_| bad())?;
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// Whether the item at `position` (from 0) of a list belongs to this shard: items are dealt
    /// round-robin, so the same list always splits the same way and shards differ by one at most.
    pub(crate) fn holds(&self, position: usize) -> bool {
        position % self.count == self.index - 1
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}
