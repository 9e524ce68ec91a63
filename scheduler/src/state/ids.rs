//! [`IdSet`]: a small set of `u32` ids (clients, workers) that needs no
//! allocation for zero or one member.
//!
//! Almost every task has exactly one holder and one worker holding its
//! result, so `holders` and `who_has` would waste an allocation each as a
//! `Vec`; a hash set would be worse still.

/// A set of ids in insertion order; inline for up to one member.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum IdSet {
    /// No member.
    #[default]
    Empty,
    /// One member, inline.
    One(u32),
    /// Two or more members (or fewer after removals).
    Many(Vec<u32>),
}

impl IdSet {
    /// A set holding `id`.
    pub(crate) fn one(id: u32) -> IdSet {
        IdSet::One(id)
    }

    /// The members, in insertion order.
    pub(crate) fn as_slice(&self) -> &[u32] {
        match self {
            IdSet::Empty => &[],
            IdSet::One(id) => std::slice::from_ref(id),
            IdSet::Many(ids) => ids,
        }
    }

    /// The members, in insertion order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.as_slice().iter().copied()
    }

    /// Whether the set has no member.
    pub(crate) fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    /// Whether `id` is a member.
    pub(crate) fn contains(&self, id: u32) -> bool {
        self.as_slice().contains(&id)
    }

    /// Adds `id`; `false` if it was already a member.
    pub(crate) fn insert(&mut self, id: u32) -> bool {
        match self {
            IdSet::Empty => *self = IdSet::One(id),
            IdSet::One(other) if *other == id => return false,
            IdSet::One(other) => *self = IdSet::Many(vec![*other, id]),
            IdSet::Many(ids) if ids.contains(&id) => return false,
            IdSet::Many(ids) => ids.push(id),
        }
        true
    }

    /// Removes `id`; `false` if it was not a member.
    pub(crate) fn remove(&mut self, id: u32) -> bool {
        match self {
            IdSet::One(other) if *other == id => *self = IdSet::Empty,
            IdSet::Many(ids) => {
                let Some(at) = ids.iter().position(|&x| x == id) else {
                    return false;
                };
                ids.remove(at);
                match ids.len() {
                    0 => *self = IdSet::Empty,
                    1 => *self = IdSet::One(ids[0]),
                    _ => {}
                }
            }
            _ => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::IdSet;

    #[test]
    fn insert_remove_keep_order_and_shrink() {
        let mut s = IdSet::default();
        assert!(s.is_empty());
        assert!(s.insert(3));
        assert!(!s.insert(3));
        assert_eq!(s, IdSet::One(3));
        assert!(s.insert(1));
        assert!(s.insert(2));
        assert_eq!(s.as_slice(), &[3, 1, 2]);
        assert!(s.remove(1));
        assert!(!s.remove(1));
        assert!(s.remove(3));
        assert_eq!(s, IdSet::One(2));
        assert!(s.contains(2));
        assert!(s.remove(2));
        assert_eq!(s, IdSet::Empty);
        assert!(!s.remove(2));
    }

    #[test]
    fn is_small() {
        assert!(std::mem::size_of::<IdSet>() <= 32);
    }
}
