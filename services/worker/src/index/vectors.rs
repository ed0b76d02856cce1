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

    /// Where `row` starts in memory, for prefetching; `None` past the end.
    #[inline]
    pub fn row_ptr(&self, row: usize) -> Option<*const f32> {
        (row < self.rows && self.dimension > 0).then(|| self.data[row * self.dimension..].as_ptr())
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
