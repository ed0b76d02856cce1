//! The distance kernels every search, build and score goes through — dot
//! product and squared Euclidean distance of f32 slices, and the dot product
//! of 8-bit codes the graph is walked and built with (see
//! `index::quantized`) — in one portable
//! form and in the vector forms the CPU may offer, chosen once per process at
//! run time. The portable form keeps eight independent accumulators so the
//! compiler can vectorise it and the adds do not form one dependent chain.
//!
//! Every form sums in a different order, so f32 results differ in the last
//! bits; tests hold each one to a relative error bound against an f64
//! reference. The 8-bit dot product is exact (integer arithmetic), and
//! tests hold every form to the exact sum.
//! Both slices must have the same length (callers validate dimensions); a
//! longer slice is read only up to the shorter one's length.

use std::sync::OnceLock;

/// One implementation of the kernels.
#[derive(Clone, Copy)]
pub struct Kernels {
    /// Name shown in logs and benchmarks (`avx512`, `avx2`, `portable`).
    pub name: &'static str,
    /// Dot product.
    pub dot: fn(&[f32], &[f32]) -> f32,
    /// Squared Euclidean distance.
    pub squared_l2: fn(&[f32], &[f32]) -> f32,
    /// Dot product of 8-bit codes, exact for slices shorter than 2^17
    /// components (no 32-bit sum can overflow below that).
    pub dot_i8: fn(&[i8], &[i8]) -> i32,
}

impl std::fmt::Debug for Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// The portable kernels, available everywhere.
pub const PORTABLE: Kernels = Kernels {
    name: "portable",
    dot: portable::dot,
    squared_l2: portable::squared_l2,
    dot_i8: portable::dot_i8,
};

/// Every implementation this CPU can run, fastest first (the portable one
/// last). Tests run each of them.
pub fn available() -> Vec<Kernels> {
    let mut found = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if x86::has_avx512() {
            found.push(x86::AVX512);
        }
        if x86::has_avx2() {
            found.push(x86::AVX2);
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        found.push(arm::NEON);
    }
    found.push(PORTABLE);
    found
}

/// The fastest implementation this CPU runs, chosen on first use.
/// `VECTRON_SIMD=portable` (or `avx2`) forces a slower one, for comparison.
pub fn active() -> &'static Kernels {
    static ACTIVE: OnceLock<Kernels> = OnceLock::new();
    ACTIVE.get_or_init(|| {
        let found = available();
        let wanted = std::env::var("VECTRON_SIMD").ok();
        wanted
            .and_then(|name| found.iter().find(|k| k.name == name).copied())
            .unwrap_or(found[0])
    })
}

mod portable {
    const LANES: usize = 8;

    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let mut acc = [0.0f32; LANES];
        let mut chunks_a = a.chunks_exact(LANES);
        let mut chunks_b = b.chunks_exact(LANES);
        for (x, y) in (&mut chunks_a).zip(&mut chunks_b) {
            for i in 0..LANES {
                acc[i] += x[i] * y[i];
            }
        }
        let tail: f32 = chunks_a
            .remainder()
            .iter()
            .zip(chunks_b.remainder())
            .map(|(x, y)| x * y)
            .sum();
        acc.iter().sum::<f32>() + tail
    }

    pub fn squared_l2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let mut acc = [0.0f32; LANES];
        let mut chunks_a = a.chunks_exact(LANES);
        let mut chunks_b = b.chunks_exact(LANES);
        for (x, y) in (&mut chunks_a).zip(&mut chunks_b) {
            for i in 0..LANES {
                let d = x[i] - y[i];
                acc[i] += d * d;
            }
        }
        let tail: f32 = chunks_a
            .remainder()
            .iter()
            .zip(chunks_b.remainder())
            .map(|(x, y)| (x - y) * (x - y))
            .sum();
        acc.iter().sum::<f32>() + tail
    }

    pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
        const WIDE: usize = 16;
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let mut acc = [0i32; WIDE];
        let mut chunks_a = a.chunks_exact(WIDE);
        let mut chunks_b = b.chunks_exact(WIDE);
        for (x, y) in (&mut chunks_a).zip(&mut chunks_b) {
            for i in 0..WIDE {
                acc[i] += x[i] as i32 * y[i] as i32;
            }
        }
        let tail: i32 = chunks_a
            .remainder()
            .iter()
            .zip(chunks_b.remainder())
            .map(|(x, y)| *x as i32 * *y as i32)
            .sum();
        acc.iter().sum::<i32>() + tail
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! AVX2+FMA and AVX-512F/BW kernels. Each f32 kernel keeps four
    //! accumulators over unaligned loads; the AVX-512 form finishes with a
    //! masked load, the AVX2 form with a scalar tail. The 8-bit dot product
    //! widens codes to 16 bits and multiplies pairs into 32-bit sums
    //! (`madd`), two accumulators, with a scalar tail.

    use std::arch::x86_64::*;

    use super::Kernels;

    pub const AVX512: Kernels = Kernels {
        name: "avx512",
        dot: dot_avx512_entry,
        squared_l2: squared_l2_avx512_entry,
        dot_i8: dot_i8_avx512_entry,
    };

    pub const AVX2: Kernels = Kernels {
        name: "avx2",
        dot: dot_avx2_entry,
        squared_l2: squared_l2_avx2_entry,
        dot_i8: dot_i8_avx2_entry,
    };

    pub fn has_avx512() -> bool {
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw")
    }

    pub fn has_avx2() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }

    // The entry points are only ever reached through `AVX512` / `AVX2`,
    // which `available()` hands out only after detecting the features.

    fn dot_avx512_entry(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: reached only when avx512f was detected (see above).
        unsafe { dot_avx512(a, b) }
    }

    fn squared_l2_avx512_entry(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: reached only when avx512f was detected.
        unsafe { squared_l2_avx512(a, b) }
    }

    fn dot_i8_avx512_entry(a: &[i8], b: &[i8]) -> i32 {
        // SAFETY: reached only when avx512f and avx512bw were detected.
        unsafe { dot_i8_avx512(a, b) }
    }

    fn dot_i8_avx2_entry(a: &[i8], b: &[i8]) -> i32 {
        // SAFETY: reached only when avx2 and fma were detected.
        unsafe { dot_i8_avx2(a, b) }
    }

    fn dot_avx2_entry(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: reached only when avx2 and fma were detected.
        unsafe { dot_avx2(a, b) }
    }

    fn squared_l2_avx2_entry(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: reached only when avx2 and fma were detected.
        unsafe { squared_l2_avx2(a, b) }
    }

    /// Mask of the low `count` (< 16) lanes.
    fn low_lanes(count: usize) -> __mmask16 {
        ((1u32 << count) - 1) as __mmask16
    }

    #[target_feature(enable = "avx512f")]
    fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY: every load reads lanes below `n`, inside both slices (the
        // masked load touches only the lanes it keeps).
        unsafe {
            while i + 64 <= n {
                for (j, lane) in acc.iter_mut().enumerate() {
                    let x = _mm512_loadu_ps(pa.add(i + 16 * j));
                    let y = _mm512_loadu_ps(pb.add(i + 16 * j));
                    *lane = _mm512_fmadd_ps(x, y, *lane);
                }
                i += 64;
            }
            while i + 16 <= n {
                let x = _mm512_loadu_ps(pa.add(i));
                let y = _mm512_loadu_ps(pb.add(i));
                acc[0] = _mm512_fmadd_ps(x, y, acc[0]);
                i += 16;
            }
            if i < n {
                let mask = low_lanes(n - i);
                let x = _mm512_maskz_loadu_ps(mask, pa.add(i));
                let y = _mm512_maskz_loadu_ps(mask, pb.add(i));
                acc[1] = _mm512_fmadd_ps(x, y, acc[1]);
            }
        }
        let sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
        _mm512_reduce_add_ps(sum)
    }

    #[target_feature(enable = "avx512f")]
    fn squared_l2_avx512(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY: as in `dot_avx512`.
        unsafe {
            while i + 64 <= n {
                for (j, lane) in acc.iter_mut().enumerate() {
                    let d = _mm512_sub_ps(
                        _mm512_loadu_ps(pa.add(i + 16 * j)),
                        _mm512_loadu_ps(pb.add(i + 16 * j)),
                    );
                    *lane = _mm512_fmadd_ps(d, d, *lane);
                }
                i += 64;
            }
            while i + 16 <= n {
                let d = _mm512_sub_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)));
                acc[0] = _mm512_fmadd_ps(d, d, acc[0]);
                i += 16;
            }
            if i < n {
                let mask = low_lanes(n - i);
                let d = _mm512_sub_ps(
                    _mm512_maskz_loadu_ps(mask, pa.add(i)),
                    _mm512_maskz_loadu_ps(mask, pb.add(i)),
                );
                acc[1] = _mm512_fmadd_ps(d, d, acc[1]);
            }
        }
        let sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
        _mm512_reduce_add_ps(sum)
    }

    #[target_feature(enable = "avx512f,avx512bw")]
    fn dot_i8_avx512(a: &[i8], b: &[i8]) -> i32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm512_setzero_si512(); 2];
        let mut i = 0;
        // SAFETY: every load reads 32 codes ending at or below `n`.
        unsafe {
            while i + 64 <= n {
                for (j, lane) in acc.iter_mut().enumerate() {
                    let x = _mm512_cvtepi8_epi16(_mm256_loadu_si256(pa.add(i + 32 * j).cast()));
                    let y = _mm512_cvtepi8_epi16(_mm256_loadu_si256(pb.add(i + 32 * j).cast()));
                    *lane = _mm512_add_epi32(*lane, _mm512_madd_epi16(x, y));
                }
                i += 64;
            }
            while i + 32 <= n {
                let x = _mm512_cvtepi8_epi16(_mm256_loadu_si256(pa.add(i).cast()));
                let y = _mm512_cvtepi8_epi16(_mm256_loadu_si256(pb.add(i).cast()));
                acc[0] = _mm512_add_epi32(acc[0], _mm512_madd_epi16(x, y));
                i += 32;
            }
        }
        let tail: i32 = a[i..n]
            .iter()
            .zip(&b[i..n])
            .map(|(x, y)| *x as i32 * *y as i32)
            .sum();
        _mm512_reduce_add_epi32(_mm512_add_epi32(acc[0], acc[1])) + tail
    }

    #[target_feature(enable = "avx2,fma")]
    fn dot_i8_avx2(a: &[i8], b: &[i8]) -> i32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_si256(); 2];
        let mut i = 0;
        // SAFETY: every load reads 16 codes ending at or below `n`.
        unsafe {
            while i + 32 <= n {
                for (j, lane) in acc.iter_mut().enumerate() {
                    let x = _mm256_cvtepi8_epi16(_mm_loadu_si128(pa.add(i + 16 * j).cast()));
                    let y = _mm256_cvtepi8_epi16(_mm_loadu_si128(pb.add(i + 16 * j).cast()));
                    *lane = _mm256_add_epi32(*lane, _mm256_madd_epi16(x, y));
                }
                i += 32;
            }
            while i + 16 <= n {
                let x = _mm256_cvtepi8_epi16(_mm_loadu_si128(pa.add(i).cast()));
                let y = _mm256_cvtepi8_epi16(_mm_loadu_si128(pb.add(i).cast()));
                acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(x, y));
                i += 16;
            }
        }
        let sum = _mm256_add_epi32(acc[0], acc[1]);
        let folded = _mm_add_epi32(
            _mm256_castsi256_si128(sum),
            _mm256_extracti128_si256(sum, 1),
        );
        let pairs = _mm_add_epi32(folded, _mm_unpackhi_epi64(folded, folded));
        let single = _mm_add_epi32(pairs, _mm_shuffle_epi32(pairs, 1));
        let tail: i32 = a[i..n]
            .iter()
            .zip(&b[i..n])
            .map(|(x, y)| *x as i32 * *y as i32)
            .sum();
        _mm_cvtsi128_si32(single) + tail
    }

    #[target_feature(enable = "avx2,fma")]
    fn horizontal_sum(v: __m256) -> f32 {
        let folded = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let pairs = _mm_add_ps(folded, _mm_movehl_ps(folded, folded));
        let single = _mm_add_ss(pairs, _mm_shuffle_ps(pairs, pairs, 1));
        _mm_cvtss_f32(single)
    }

    #[target_feature(enable = "avx2,fma")]
    fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY: every load reads 8 lanes ending at or below `n`.
        unsafe {
            while i + 32 <= n {
                for (j, lane) in acc.iter_mut().enumerate() {
                    let x = _mm256_loadu_ps(pa.add(i + 8 * j));
                    let y = _mm256_loadu_ps(pb.add(i + 8 * j));
                    *lane = _mm256_fmadd_ps(x, y, *lane);
                }
                i += 32;
            }
            while i + 8 <= n {
                let x = _mm256_loadu_ps(pa.add(i));
                let y = _mm256_loadu_ps(pb.add(i));
                acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
                i += 8;
            }
        }
        let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let tail: f32 = a[i..n].iter().zip(&b[i..n]).map(|(x, y)| x * y).sum();
        horizontal_sum(sum) + tail
    }

    #[target_feature(enable = "avx2,fma")]
    fn squared_l2_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY: as in `dot_avx2`.
        unsafe {
            while i + 32 <= n {
                for (j, lane) in acc.iter_mut().enumerate() {
                    let d = _mm256_sub_ps(
                        _mm256_loadu_ps(pa.add(i + 8 * j)),
                        _mm256_loadu_ps(pb.add(i + 8 * j)),
                    );
                    *lane = _mm256_fmadd_ps(d, d, *lane);
                }
                i += 32;
            }
            while i + 8 <= n {
                let d = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
                acc[0] = _mm256_fmadd_ps(d, d, acc[0]);
                i += 8;
            }
        }
        let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let tail: f32 = a[i..n]
            .iter()
            .zip(&b[i..n])
            .map(|(x, y)| (x - y) * (x - y))
            .sum();
        horizontal_sum(sum) + tail
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    //! NEON kernels (NEON is part of the aarch64 baseline, so no detection).

    use std::arch::aarch64::*;

    use super::Kernels;

    pub const NEON: Kernels = Kernels {
        name: "neon",
        dot,
        squared_l2,
        // The portable form; the compiler vectorises its 16 accumulators.
        dot_i8: super::portable::dot_i8,
    };

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        // SAFETY: NEON is always present on aarch64; each load reads 4 lanes
        // ending at or below `n`.
        let sum = unsafe {
            let mut acc = [vdupq_n_f32(0.0); 4];
            while i + 16 <= n {
                for (j, lane) in acc.iter_mut().enumerate() {
                    *lane = vfmaq_f32(
                        *lane,
                        vld1q_f32(pa.add(i + 4 * j)),
                        vld1q_f32(pb.add(i + 4 * j)),
                    );
                }
                i += 16;
            }
            while i + 4 <= n {
                acc[0] = vfmaq_f32(acc[0], vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)));
                i += 4;
            }
            vaddvq_f32(vaddq_f32(
                vaddq_f32(acc[0], acc[1]),
                vaddq_f32(acc[2], acc[3]),
            ))
        };
        sum + a[i..n]
            .iter()
            .zip(&b[i..n])
            .map(|(x, y)| x * y)
            .sum::<f32>()
    }

    fn squared_l2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        // SAFETY: as in `dot`.
        let sum = unsafe {
            let mut acc = [vdupq_n_f32(0.0); 4];
            while i + 16 <= n {
                for (j, lane) in acc.iter_mut().enumerate() {
                    let d = vsubq_f32(vld1q_f32(pa.add(i + 4 * j)), vld1q_f32(pb.add(i + 4 * j)));
                    *lane = vfmaq_f32(*lane, d, d);
                }
                i += 16;
            }
            while i + 4 <= n {
                let d = vsubq_f32(vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)));
                acc[0] = vfmaq_f32(acc[0], d, d);
                i += 4;
            }
            vaddvq_f32(vaddq_f32(
                vaddq_f32(acc[0], acc[1]),
                vaddq_f32(acc[2], acc[3]),
            ))
        };
        sum + a[i..n]
            .iter()
            .zip(&b[i..n])
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift), so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn unit(&mut self) -> f32 {
            (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        }
    }

    fn dot_f64(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
    }

    fn squared_l2_f64(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
            .sum()
    }

    /// `got` against the f64 `reference`, relative to the magnitude the sum
    /// was built from (`scale`: the sum of absolute terms), which is the
    /// error bound a reordered f32 summation can promise.
    fn assert_close(kernel: &str, what: &str, n: usize, got: f32, reference: f64, scale: f64) {
        let error = (got as f64 - reference).abs();
        let bound = 1e-5 * scale.max(f64::MIN_POSITIVE) + 1e-30;
        assert!(
            error <= bound,
            "{kernel} {what} n={n}: got {got}, reference {reference}, error {error} > {bound}"
        );
    }

    fn check_pair(a: &[f32], b: &[f32]) {
        let n = a.len();
        let dot_scale: f64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| (*x as f64 * *y as f64).abs())
            .sum();
        let l2_reference = squared_l2_f64(a, b);
        for kernels in available() {
            assert_close(
                kernels.name,
                "dot",
                n,
                (kernels.dot)(a, b),
                dot_f64(a, b),
                dot_scale,
            );
            assert_close(
                kernels.name,
                "squared_l2",
                n,
                (kernels.squared_l2)(a, b),
                l2_reference,
                l2_reference,
            );
        }
    }

    #[test]
    fn every_kernel_matches_the_f64_reference_on_random_inputs_of_every_length() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        // Every length up to past two full AVX-512 blocks covers each tail.
        for n in 0..=200 {
            for _ in 0..4 {
                let a: Vec<f32> = (0..n).map(|_| rng.unit()).collect();
                let b: Vec<f32> = (0..n).map(|_| rng.unit()).collect();
                check_pair(&a, &b);
            }
        }
        for n in [384, 768, 1536, 4096] {
            let a: Vec<f32> = (0..n).map(|_| rng.unit()).collect();
            let b: Vec<f32> = (0..n).map(|_| rng.unit()).collect();
            check_pair(&a, &b);
        }
    }

    #[test]
    fn every_kernel_matches_the_f64_reference_on_adversarial_inputs() {
        let mut rng = Rng(42);
        let n = 389; // not a multiple of any lane width
        // Magnitudes spanning many orders, cancelling signs, huge and tiny
        // values, zeros, and identical vectors (l2 distance exactly zero).
        let wide: Vec<f32> = (0..n)
            .map(|i| rng.unit() * 10f32.powi((i % 13) as i32 - 6))
            .collect();
        let alternating: Vec<f32> = (0..n)
            .map(|i| if i % 2 == 0 { 1e3 } else { -1e3 })
            .collect();
        let huge: Vec<f32> = (0..n).map(|_| rng.unit() * 1e17).collect();
        let tiny: Vec<f32> = (0..n).map(|_| rng.unit() * 1e-18).collect();
        let zeros = vec![0.0f32; n];
        let ones = vec![1.0f32; n];
        let inputs = [&wide, &alternating, &huge, &tiny, &zeros, &ones];
        for a in inputs {
            for b in inputs {
                check_pair(a, b);
            }
        }
        for kernels in available() {
            assert_eq!((kernels.squared_l2)(&wide, &wide), 0.0, "{}", kernels.name);
            assert_eq!((kernels.dot)(&zeros, &wide), 0.0, "{}", kernels.name);
        }
    }

    fn dot_i8_exact(a: &[i8], b: &[i8]) -> i64 {
        a.iter().zip(b).map(|(x, y)| *x as i64 * *y as i64).sum()
    }

    #[test]
    fn every_8_bit_kernel_is_exact_on_random_and_extreme_codes_of_every_length() {
        let mut rng = Rng(7);
        let check = |a: &[i8], b: &[i8]| {
            let exact = dot_i8_exact(a, b);
            for kernels in available() {
                assert_eq!(
                    (kernels.dot_i8)(a, b) as i64,
                    exact,
                    "{} dot_i8 n={}",
                    kernels.name,
                    a.len()
                );
            }
        };
        for n in 0..=200 {
            let a: Vec<i8> = (0..n).map(|_| rng.next() as i8).collect();
            let b: Vec<i8> = (0..n).map(|_| rng.next() as i8).collect();
            check(&a, &b);
        }
        // The extremes: every product at its largest, both signs, and the
        // -128 code, at lengths that exercise every tail.
        for n in [384, 389, 4096, 65_536] {
            let low = vec![-128i8; n];
            let high = vec![127i8; n];
            let mixed: Vec<i8> = (0..n)
                .map(|i| if i % 2 == 0 { -128 } else { 127 })
                .collect();
            check(&low, &low);
            check(&low, &high);
            check(&high, &high);
            check(&mixed, &low);
        }
    }

    #[test]
    fn a_longer_slice_is_read_only_to_the_shorter_ones_length() {
        let a = [1.0f32; 40];
        let b = [2.0f32; 37];
        for kernels in available() {
            assert_eq!((kernels.dot)(&a, &b), 74.0, "{}", kernels.name);
            assert_eq!((kernels.squared_l2)(&a, &b), 37.0, "{}", kernels.name);
            assert_eq!(
                (kernels.dot_i8)(&[3; 40], &[-2; 37]),
                -222,
                "{}",
                kernels.name
            );
        }
    }

    #[test]
    fn the_active_kernels_are_one_of_the_available_ones() {
        let names: Vec<&str> = available().iter().map(|k| k.name).collect();
        assert!(names.contains(&active().name));
        assert_eq!(names.last(), Some(&"portable"));
    }
}
