//! `SmallMap`: the sorted map of the dispatcher's per-group and per-receiver state, which
//! holds one or two entries nearly always and thousands now and then.
//!
//! A `BTreeMap` allocates a whole node (room for 11 entries) for its first entry: with a
//! group per alert, the dispatcher's four maps per alert cost about 2 KiB before holding
//! anything. Up to [`FEW`] entries this keeps a sorted `Vec` of exactly what it holds, and
//! turns into a `BTreeMap` past that, so a group of 30,000 alerts still inserts in
//! O(log n). It iterates in key order either way and serializes as the map it stands for,
//! so persisted rows are the same as a `BTreeMap`'s. It owns nothing but that storage.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::collections::btree_map;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Most entries kept in a vector before the map becomes a B-tree.
const FEW: usize = 8;

/// A sorted map: a vector of exactly its entries while it holds at most [`FEW`], a
/// `BTreeMap` once it held more.
#[derive(Clone)]
pub(crate) enum SmallMap<K, V> {
    /// Sorted by key, no spare capacity beyond what was needed.
    Few(Vec<(K, V)>),
    /// Past [`FEW`] entries (it does not go back).
    Many(BTreeMap<K, V>),
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap::Few(Vec::new())
    }
}

impl<K: Ord, V> SmallMap<K, V> {
    /// How many entries it holds.
    pub(crate) fn len(&self) -> usize {
        match self {
            SmallMap::Few(v) => v.len(),
            SmallMap::Many(m) => m.len(),
        }
    }

    /// Whether it holds nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of `k`.
    pub(crate) fn get<Q: Ord + ?Sized>(&self, k: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        match self {
            SmallMap::Few(v) => v.binary_search_by(|(x, _)| x.borrow().cmp(k)).ok().map(|i| &v[i].1),
            SmallMap::Many(m) => m.get(k),
        }
    }

    /// The value of `k`, to change.
    pub(crate) fn get_mut<Q: Ord + ?Sized>(&mut self, k: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        match self {
            SmallMap::Few(v) => match v.binary_search_by(|(x, _)| x.borrow().cmp(k)) {
                Ok(i) => Some(&mut v[i].1),
                Err(_) => None,
            },
            SmallMap::Many(m) => m.get_mut(k),
        }
    }

    /// Whether `k` has a value.
    pub(crate) fn contains_key<Q: Ord + ?Sized>(&self, k: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.get(k).is_some()
    }

    /// Sets `k` to `value`; the value it had.
    pub(crate) fn insert(&mut self, k: K, value: V) -> Option<V> {
        let at = match self {
            SmallMap::Few(v) => v.binary_search_by(|(x, _)| x.cmp(&k)),
            SmallMap::Many(m) => return m.insert(k, value),
        };
        if at.is_err() && self.len() == FEW {
            return self.tree().insert(k, value);
        }
        let SmallMap::Few(v) = self else {
            unreachable!("a B-tree returned above")
        };
        match at {
            Ok(i) => Some(std::mem::replace(&mut v[i].1, value)),
            Err(i) => {
                // One more element at a time: a vector grown by `push` reserves four.
                v.reserve_exact(1);
                v.insert(i, (k, value));
                None
            }
        }
    }

    /// The B-tree, converting the vector into it first.
    fn tree(&mut self) -> &mut BTreeMap<K, V> {
        if let SmallMap::Few(v) = self {
            let m = std::mem::take(v).into_iter().collect();
            *self = SmallMap::Many(m);
        }
        match self {
            SmallMap::Many(m) => m,
            SmallMap::Few(_) => unreachable!("converted above"),
        }
    }

    /// Removes `k`; the value it had.
    pub(crate) fn remove<Q: Ord + ?Sized>(&mut self, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        match self {
            SmallMap::Few(v) => match v.binary_search_by(|(x, _)| x.borrow().cmp(k)) {
                Ok(i) => Some(v.remove(i).1),
                Err(_) => None,
            },
            SmallMap::Many(m) => m.remove(k),
        }
    }

    /// The value of `k`, inserting the default first when it has none.
    pub(crate) fn get_or_default(&mut self, k: K) -> &mut V
    where
        V: Default,
    {
        let at = match self {
            SmallMap::Few(v) => v.binary_search_by(|(x, _)| x.cmp(&k)),
            SmallMap::Many(m) => return m.entry(k).or_default(),
        };
        if at.is_err() && self.len() == FEW {
            return self.tree().entry(k).or_default();
        }
        let SmallMap::Few(v) = self else {
            unreachable!("a B-tree returned above")
        };
        let i = match at {
            Ok(i) => i,
            Err(i) => {
                v.reserve_exact(1);
                v.insert(i, (k, V::default()));
                i
            }
        };
        &mut v[i].1
    }

    /// Entries in key order.
    pub(crate) fn iter(&self) -> Iter<'_, K, V> {
        match self {
            SmallMap::Few(v) => Iter::Few(v.iter()),
            SmallMap::Many(m) => Iter::Many(m.iter()),
        }
    }

    /// Keys in order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &K> {
        self.iter().map(|(k, _)| k)
    }

    /// Values in key order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }

    /// Values in key order, to change.
    pub(crate) fn values_mut(&mut self) -> ValuesMut<'_, K, V> {
        match self {
            SmallMap::Few(v) => ValuesMut::Few(v.iter_mut()),
            SmallMap::Many(m) => ValuesMut::Many(m.values_mut()),
        }
    }

    /// Keeps the entries `f` says to keep, visiting them in key order.
    pub(crate) fn retain(&mut self, mut f: impl FnMut(&K, &mut V) -> bool) {
        match self {
            SmallMap::Few(v) => {
                v.retain_mut(|(k, x)| f(k, x));
                v.shrink_to_fit();
            }
            SmallMap::Many(m) => m.retain(|k, x| f(k, x)),
        }
    }
}

/// [`SmallMap::iter`].
pub(crate) enum Iter<'a, K, V> {
    Few(std::slice::Iter<'a, (K, V)>),
    Many(btree_map::Iter<'a, K, V>),
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Few(i) => i.next().map(|(k, v)| (k, v)),
            Iter::Many(i) => i.next(),
        }
    }
}

/// [`SmallMap::values_mut`].
pub(crate) enum ValuesMut<'a, K, V> {
    Few(std::slice::IterMut<'a, (K, V)>),
    Many(btree_map::ValuesMut<'a, K, V>),
}

impl<'a, K, V> Iterator for ValuesMut<'a, K, V> {
    type Item = &'a mut V;

    fn next(&mut self) -> Option<&'a mut V> {
        match self {
            ValuesMut::Few(i) => i.next().map(|(_, v)| v),
            ValuesMut::Many(i) => i.next(),
        }
    }
}

impl<'a, K: Ord, V> IntoIterator for &'a SmallMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;

    fn into_iter(self) -> Iter<'a, K, V> {
        self.iter()
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for SmallMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let m: BTreeMap<K, V> = iter.into_iter().collect();
        if m.len() <= FEW {
            SmallMap::Few(m.into_iter().collect())
        } else {
            SmallMap::Many(m)
        }
    }
}

/// Equal when they hold the same entries, whichever storage holds them.
impl<K: Ord, V: PartialEq> PartialEq for SmallMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<K: Ord + std::fmt::Debug, V: std::fmt::Debug> std::fmt::Debug for SmallMap<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// As the `BTreeMap` it stands for.
impl<K: Ord + Serialize, V: Serialize> Serialize for SmallMap<K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

/// As the `BTreeMap` it stands for.
impl<'de, K: Ord + Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for SmallMap<K, V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(BTreeMap::<K, V>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u8, u16),
        Remove(u8),
        Default(u8),
        Retain(u8),
        Bump,
    }

    fn op() -> impl Strategy<Value = Op> {
        // Keys from a small range, so maps cross FEW both ways and keys repeat.
        prop_oneof![
            (0u8..24, any::<u16>()).prop_map(|(k, v)| Op::Insert(k, v)),
            (0u8..24).prop_map(Op::Remove),
            (0u8..24).prop_map(Op::Default),
            (1u8..5).prop_map(Op::Retain),
            Just(Op::Bump),
        ]
    }

    proptest! {
        /// Every operation answers as a `BTreeMap`'s does, and both hold the same entries
        /// in the same order (and serialize to the same JSON) after each.
        #[test]
        fn behaves_as_a_btree_map(ops in proptest::collection::vec(op(), 0..80)) {
            let mut small: SmallMap<u8, u16> = SmallMap::default();
            let mut tree: BTreeMap<u8, u16> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => prop_assert_eq!(small.insert(k, v), tree.insert(k, v)),
                    Op::Remove(k) => prop_assert_eq!(small.remove(&k), tree.remove(&k)),
                    Op::Default(k) => {
                        *small.get_or_default(k) += 1;
                        *tree.entry(k).or_default() += 1;
                    }
                    Op::Retain(m) => {
                        small.retain(|k, _| k % m == 0);
                        tree.retain(|k, _| k % m == 0);
                    }
                    Op::Bump => {
                        small.values_mut().for_each(|v| *v = v.wrapping_add(1));
                        tree.values_mut().for_each(|v| *v = v.wrapping_add(1));
                    }
                }
                prop_assert_eq!(small.len(), tree.len());
                prop_assert!(small.iter().eq(tree.iter()));
                for k in 0..24u8 {
                    prop_assert_eq!(small.get(&k), tree.get(&k));
                    prop_assert_eq!(small.contains_key(&k), tree.contains_key(&k));
                }
                prop_assert_eq!(serde_json::to_string(&small).unwrap(), serde_json::to_string(&tree).unwrap());
                let back: SmallMap<u8, u16> = serde_json::from_str(&serde_json::to_string(&tree).unwrap()).unwrap();
                prop_assert_eq!(&back, &small);
            }
        }
    }

    #[test]
    fn a_few_entries_take_exactly_their_room() {
        let mut m: SmallMap<u64, u64> = SmallMap::default();
        m.insert(2, 0);
        m.insert(1, 0);
        let SmallMap::Few(v) = &m else {
            panic!("two entries stay a vector")
        };
        assert_eq!(v.capacity(), 2);
        for k in 0..FEW as u64 + 1 {
            m.insert(k, k);
        }
        assert!(matches!(m, SmallMap::Many(_)), "past FEW entries it is a B-tree");
    }
}
