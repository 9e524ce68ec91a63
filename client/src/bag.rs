//! [`Bag`]: a partitioned collection whose partitions are task results,
//! like dask's `Bag`: map a task over the partitions, reduce them with a
//! tree of tasks, compute or persist the whole collection.
//!
//! ```no_run
//! # async fn demo(client: wask::Client, math: wask::Module) -> wask::Result<()> {
//! use wask::Bag;
//! let range = math.task::<(i64, i64), Vec<i64>>("range")?;      // [a, b)
//! let squares = math.task::<(Vec<i64>,), Vec<i64>>("squares")?;
//! let sum = math.task::<(Vec<i64>,), i64>("sum")?;
//! let parts = (0..100).map(|p| range.delay((p * 1000, (p + 1) * 1000)));
//! let bag = Bag::from_delayed(parts.collect::<Result<Vec<_>, _>>()?);
//! let total = bag.map_partitions(&squares)?.reduction(&sum, &sum, 8)?;
//! let f = client.compute(&total)?;                  // 100 + 100 + 15 tasks
//! # Ok(()) }
//! ```

use crate::client::Client;
use crate::error::{Error, Result};
use crate::future::Future;
use crate::graph::Delayed;
use crate::module::Task;
use serde::de::DeserializeOwned;

/// A collection in partitions, each a `Vec<T>` computed (or held) on the
/// cluster. Building on a bag only describes tasks; nothing runs until it
/// is computed or persisted. Cloning is cheap.
pub struct Bag<T> {
    parts: Vec<Delayed<Vec<T>>>,
}

impl<T> Clone for Bag<T> {
    fn clone(&self) -> Self {
        Bag {
            parts: self.parts.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Bag<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<Bag: {} partitions>", self.parts.len())
    }
}

impl<T> Bag<T> {
    /// A bag of these partitions.
    pub fn from_delayed(parts: Vec<Delayed<Vec<T>>>) -> Bag<T> {
        Bag { parts }
    }

    /// A bag whose partitions are results held already.
    pub fn from_futures(parts: &[Future<Vec<T>>]) -> Bag<T> {
        Bag {
            parts: parts.iter().map(Delayed::from).collect(),
        }
    }

    /// The partitions.
    pub fn partitions(&self) -> &[Delayed<Vec<T>>] {
        &self.parts
    }

    /// Number of partitions.
    pub fn npartitions(&self) -> usize {
        self.parts.len()
    }

    /// One call of `task` per partition (dask's `map_partitions`).
    pub fn map_partitions<U>(&self, task: &Task<(Vec<T>,), Vec<U>>) -> Result<Bag<U>> {
        let parts = self
            .parts
            .iter()
            .map(|p| task.delay((p,)))
            .collect::<Result<_>>()?;
        Ok(Bag { parts })
    }

    /// Reduces the bag to one value (dask's `Bag.reduction`):
    /// `per_partition` on each partition, then `aggregate` over groups of
    /// at most `split_every` results, level by level, until one is left.
    pub fn reduction<A>(
        &self,
        per_partition: &Task<(Vec<T>,), A>,
        aggregate: &Task<(Vec<A>,), A>,
        split_every: usize,
    ) -> Result<Delayed<A>> {
        if split_every < 2 {
            return Err(Error::InvalidArgument(format!(
                "split_every must be at least 2, not {split_every}"
            )));
        }
        if self.parts.is_empty() {
            return Err(Error::InvalidArgument(
                "an empty bag has nothing to reduce".into(),
            ));
        }
        let mut level: Vec<Delayed<A>> = self
            .parts
            .iter()
            .map(|p| per_partition.delay((p,)))
            .collect::<Result<_>>()?;
        // `aggregate` runs at least once, even over a single partition, so
        // the result means the same whatever the partitioning.
        loop {
            level = level
                .chunks(split_every)
                .map(|group| aggregate.delay((group,)))
                .collect::<Result<_>>()?;
            if level.len() == 1 {
                return Ok(level.pop().expect("one value"));
            }
        }
    }

    /// Submits every partition in one message and returns their futures.
    pub fn compute(&self, client: &Client) -> Result<Vec<Future<Vec<T>>>> {
        client.compute_all(&self.parts)
    }

    /// Submits every partition and returns the bag backed by the results
    /// on the cluster (dask's `persist`).
    pub fn persist(&self, client: &Client) -> Result<Bag<T>> {
        Ok(Bag {
            parts: client.persist_all(&self.parts)?,
        })
    }
}

impl<T: DeserializeOwned> Bag<T> {
    /// Computes every partition and gathers them into one `Vec`, in order.
    pub async fn gather(&self, client: &Client) -> Result<Vec<T>> {
        let parts = client.gather(&self.compute(client)?).await?;
        Ok(parts.into_iter().flatten().collect())
    }
}
