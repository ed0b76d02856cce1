//! The prepared vectors of one segment in one contiguous array, row `o` at
//! `o * dimension`. One allocation instead of one per point keeps the walk's
//! reads dense and lets the CPU prefetch them. The dimension is learned from
//! the first vector stored; a row never given a vector reads as zeros. No I/O.

/// Prepared vectors by offset.
#[derive(Debug, Default, Clone)]
pub struct VectorStore {
    dimension: usize,
    rows: usize,
    data: Vec<f32>,
}

impl VectorStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store of `rows` rows with no vector yet (see [`VectorStore::set`]).
    pub fn with_empty_rows(rows: usize) -> Self {
        Self {
            dimension: 0,
            rows,
            data: Vec::new(),
        }
    }

    /// Rows, with or without a vector.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Components per vector (0 before the first vector).
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    fn learn_dimension(&mut self, dimension: usize) {
        if self.dimension == 0 && dimension > 0 {
            self.dimension = dimension;
            self.data = vec![0.0; self.rows * dimension];
        }
    }

    /// Appends a row.
    pub fn push(&mut self, vector: &[f32]) {
        self.learn_dimension(vector.len());
        self.data.extend(
            vector
                .iter()
                .copied()
                .chain(std::iter::repeat(0.0))
                .take(self.dimension),
        );
        self.rows += 1;
    }

    /// Sets the vector of an existing row.
    pub fn set(&mut self, row: usize, vector: &[f32]) {
        self.learn_dimension(vector.len());
        if row < self.rows && vector.len() == self.dimension {
            let start = row * self.dimension;
            self.data[start..start + self.dimension].copy_from_slice(vector);
        }
    }

    /// The vector of `row` (empty past the end or before any vector).
    #[inline]
    pub fn get(&self, row: usize) -> &[f32] {
        let start = row * self.dimension;
        self.data
            .get(start..start + self.dimension)
            .filter(|_| row < self.rows)
            .unwrap_or(&[])
    }

    /// Asks the CPU to start loading `row` (its first two cache lines; the
    /// hardware prefetcher follows the rest).
    #[inline]
    pub fn prefetch(&self, row: u32) {
        #[cfg(target_arch = "x86_64")]
        if let Some(first) = self.get(row as usize).first() {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let ptr = first as *const f32;
            // SAFETY: a prefetch is a hint; it never faults or changes
            // memory.
            unsafe {
                _mm_prefetch(ptr as *const i8, _MM_HINT_T0);
                _mm_prefetch(ptr.wrapping_add(16) as *const i8, _MM_HINT_T0);
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = row;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_stored_and_read_back_in_place() {
        let mut store = VectorStore::new();
        store.push(&[1.0, 2.0]);
        store.push(&[3.0, 4.0]);
        assert_eq!(store.get(1), &[3.0, 4.0]);
        store.set(0, &[5.0, 6.0]);
        assert_eq!(store.get(0), &[5.0, 6.0]);
        assert!(store.get(2).is_empty());
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn empty_rows_read_as_zeros_once_the_dimension_is_known() {
        let mut store = VectorStore::with_empty_rows(3);
        assert!(store.get(0).is_empty());
        store.set(2, &[1.0, 1.0, 1.0]);
        assert_eq!(store.get(0), &[0.0, 0.0, 0.0]);
        assert_eq!(store.get(2), &[1.0, 1.0, 1.0]);
        // A vector of the wrong length changes nothing.
        store.set(1, &[9.0]);
        assert_eq!(store.get(1), &[0.0, 0.0, 0.0]);
    }
}
