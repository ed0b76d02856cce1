//! A dense set of small integers (payload-index slots) as 64-bit words: the
//! form a filter takes once evaluated, tested in O(1) inside the graph walk.
//! No I/O.

/// A set of slots `0..len()`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bitmap {
    words: Vec<u64>,
}

impl Bitmap {
    /// The empty set able to hold slots below `capacity` without growing.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            words: vec![0; capacity.div_ceil(64)],
        }
    }

    /// Adds `slot`, growing as needed.
    pub fn insert(&mut self, slot: u32) {
        let word = slot as usize / 64;
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        self.words[word] |= 1 << (slot % 64);
    }

    /// Removes `slot`.
    pub fn remove(&mut self, slot: u32) {
        if let Some(word) = self.words.get_mut(slot as usize / 64) {
            *word &= !(1 << (slot % 64));
        }
    }

    /// Whether `slot` is in the set.
    pub fn contains(&self, slot: u32) -> bool {
        self.words
            .get(slot as usize / 64)
            .is_some_and(|word| word & (1 << (slot % 64)) != 0)
    }

    /// Adds every slot of `slots`.
    pub fn extend(&mut self, slots: &[u32]) {
        for &slot in slots {
            self.insert(slot);
        }
    }

    /// Keeps only the slots also in `other`.
    pub fn intersect(&mut self, other: &Bitmap) {
        for (i, word) in self.words.iter_mut().enumerate() {
            *word &= other.words.get(i).copied().unwrap_or(0);
        }
    }

    /// Adds every slot of `other`.
    pub fn union(&mut self, other: &Bitmap) {
        if other.words.len() > self.words.len() {
            self.words.resize(other.words.len(), 0);
        }
        for (word, theirs) in self.words.iter_mut().zip(&other.words) {
            *word |= theirs;
        }
    }

    /// Removes every slot of `other`.
    pub fn subtract(&mut self, other: &Bitmap) {
        for (word, theirs) in self.words.iter_mut().zip(&other.words) {
            *word &= !theirs;
        }
    }

    /// How many slots the set holds.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The slots in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = rest.trailing_zeros();
                rest &= rest - 1;
                Some(i as u32 * 64 + bit)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(slots: &[u32]) -> Bitmap {
        let mut b = Bitmap::default();
        b.extend(slots);
        b
    }

    #[test]
    fn set_operations_agree_with_their_definitions() {
        let a = of(&[0, 3, 64, 65, 200]);
        let b = of(&[3, 65, 129]);
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![0, 3, 64, 65, 200]);
        assert_eq!(a.count(), 5);
        assert!(a.contains(200) && !a.contains(199) && !a.contains(10_000));

        let mut both = a.clone();
        both.intersect(&b);
        assert_eq!(both.iter().collect::<Vec<_>>(), vec![3, 65]);

        let mut either = b.clone();
        either.union(&a);
        assert_eq!(
            either.iter().collect::<Vec<_>>(),
            vec![0, 3, 64, 65, 129, 200]
        );

        let mut only_a = a.clone();
        only_a.subtract(&b);
        assert_eq!(only_a.iter().collect::<Vec<_>>(), vec![0, 64, 200]);

        let mut removed = a;
        removed.remove(64);
        removed.remove(9_999);
        assert_eq!(removed.iter().collect::<Vec<_>>(), vec![0, 3, 65, 200]);
        assert_eq!(Bitmap::with_capacity(130).count(), 0);
    }
}
