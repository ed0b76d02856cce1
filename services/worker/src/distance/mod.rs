//! Distance functions and scores of the three collection metrics. Scores are
//! what the API returns: cosine and dot are similarities (higher is better),
//! l2 is the squared Euclidean distance (lower is better). The HNSW graph
//! orders points by squared l2, or by the negated dot product for cosine
//! (unit vectors) and dot (see `index::segment::walk_distance`). The
//! arithmetic itself is in [`kernels`], picked for the CPU at run time.
//! hnsw_rs's forms of the same distances (non-negative, for the baseline the
//! tests compare against) are in [`hnsw_rs_forms`]. No I/O.

pub mod kernels;

use std::cmp::Ordering;

/// Distance function of a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Metric {
    /// Cosine similarity.
    Cosine,
    /// Squared Euclidean distance.
    L2,
    /// Inner product.
    Dot,
}

/// Dot product (the fastest kernel this CPU runs).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    (kernels::active().dot)(a, b)
}

/// Squared Euclidean distance (the fastest kernel this CPU runs).
#[inline]
pub fn squared_l2(a: &[f32], b: &[f32]) -> f32 {
    (kernels::active().squared_l2)(a, b)
}

/// `v` scaled to unit length (the zero vector stays zero).
pub fn normalized(v: &[f32]) -> Vec<f32> {
    let norm = dot(v, v).sqrt();
    if norm == 0.0 {
        v.to_vec()
    } else {
        v.iter().map(|x| x / norm).collect()
    }
}

impl Metric {
    /// Whether higher scores are better.
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Metric::L2)
    }

    /// Orders scores best first.
    pub fn compare(self, a: f32, b: f32) -> Ordering {
        let ordering = a.partial_cmp(&b).unwrap_or(Ordering::Equal);
        if self.higher_is_better() {
            ordering.reverse()
        } else {
            ordering
        }
    }

    /// The form a stored vector is scored in: unit length for cosine, as is
    /// otherwise.
    pub fn prepare(self, v: &[f32]) -> Vec<f32> {
        match self {
            Metric::Cosine => normalized(v),
            Metric::L2 | Metric::Dot => v.to_vec(),
        }
    }

    /// The API score of prepared vectors.
    pub fn score(self, query: &[f32], point: &[f32]) -> f32 {
        match self {
            Metric::Cosine | Metric::Dot => dot(query, point),
            Metric::L2 => squared_l2(query, point),
        }
    }
}

#[cfg(test)]
pub mod hnsw_rs_forms {
    //! The metrics as hnsw_rs distances (non-negative, lower is closer), for
    //! the tests that hold Vectron's graph to hnsw_rs's recall.

    use hnsw_rs::anndists::dist::Distance;

    use super::{dot, squared_l2};

    /// `1 - dot` of unit vectors, clamped at zero against rounding.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct UnitCosineDistance;

    impl Distance<f32> for UnitCosineDistance {
        fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
            (1.0 - dot(a, b)).max(0.0)
        }
    }

    /// Squared Euclidean distance.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct SquaredL2Distance;

    impl Distance<f32> for SquaredL2Distance {
        fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
            squared_l2(a, b)
        }
    }

    /// Inner product as a non-negative distance: `c - a·b`, with `c` the square
    /// of the largest norm the graph accepts, so `a·b <= c` for any two indexed
    /// points (Cauchy–Schwarz). Queries are scaled to that norm before searching,
    /// which keeps their distances non-negative too and does not change
    /// inner-product order.
    #[derive(Debug, Clone, Copy)]
    pub struct ShiftedDotDistance {
        /// The shift, `max_norm²`.
        pub c: f32,
    }

    impl Distance<f32> for ShiftedDotDistance {
        fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
            (self.c - dot(a, b)).max(0.0)
        }
    }

    /// `q` scaled to norm `target` (the zero vector stays zero).
    pub fn scaled_to(q: &[f32], target: f32) -> Vec<f32> {
        let norm = dot(q, q).sqrt();
        if norm == 0.0 {
            q.to_vec()
        } else {
            q.iter().map(|x| x * target / norm).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::hnsw_rs_forms::*;
    use super::*;
    use hnsw_rs::anndists::dist::Distance;

    #[test]
    fn scores_and_order() {
        let q = [1.0, 0.0];
        let near = [0.9, 0.1];
        let far = [-1.0, 0.0];
        assert!(
            Metric::L2
                .compare(Metric::L2.score(&q, &near), Metric::L2.score(&q, &far))
                .is_lt()
        );
        assert!(
            Metric::Dot
                .compare(Metric::Dot.score(&q, &near), Metric::Dot.score(&q, &far))
                .is_lt()
        );
        let (qc, nc) = (
            Metric::Cosine.prepare(&q),
            Metric::Cosine.prepare(&[3.0, 0.0]),
        );
        assert!((Metric::Cosine.score(&qc, &nc) - 1.0).abs() < 1e-6);
        assert_eq!(Metric::L2.score(&[0.0, 0.0], &[3.0, 4.0]), 25.0);
    }

    #[test]
    fn shifted_dot_orders_like_inner_product_and_stays_non_negative() {
        let points = [
            vec![1.0, 2.0],
            vec![3.0, -1.0],
            vec![0.5, 0.5],
            vec![-2.0, 2.0],
        ];
        let max_norm = points.iter().map(|p| dot(p, p).sqrt()).fold(0.0, f32::max);
        let distance = ShiftedDotDistance {
            c: max_norm * max_norm,
        };
        let q = scaled_to(&[70.0, 30.0], max_norm);
        let mut by_dot: Vec<usize> = (0..points.len()).collect();
        by_dot.sort_by(|&a, &b| Metric::Dot.compare(dot(&q, &points[a]), dot(&q, &points[b])));
        let mut by_distance: Vec<usize> = (0..points.len()).collect();
        by_distance.sort_by(|&a, &b| {
            let (da, db) = (distance.eval(&q, &points[a]), distance.eval(&q, &points[b]));
            da.partial_cmp(&db).unwrap_or(Ordering::Equal)
        });
        assert_eq!(by_dot, by_distance);
        for p in &points {
            assert!(distance.eval(&q, p) >= 0.0);
        }
    }

    #[test]
    fn cosine_distance_never_goes_negative() {
        let v = normalized(&[0.1, 0.2, 0.3]);
        assert!(UnitCosineDistance.eval(&v, &v) >= 0.0);
    }
}
