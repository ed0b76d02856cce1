//! Tests of the routing primitives against published FNV vectors and the
//! tiling property of the shard ranges.

use super::*;

/// Published FNV-1a 64-bit test vectors (Fowler/Noll/Vo reference test suite,
/// http://www.isthe.com/chongo/src/fnv/test_fnv.c, `fnv1a_64_vector`).
const FNV1A_64_VECTORS: &[(&[u8], u64)] = &[
    (b"", 0xcbf29ce484222325),
    (b"a", 0xaf63dc4c8601ec8c),
    (b"b", 0xaf63df4c8601f1a5),
    (b"c", 0xaf63de4c8601eff2),
    (b"d", 0xaf63d94c8601e773),
    (b"e", 0xaf63d84c8601e5c0),
    (b"f", 0xaf63db4c8601ead9),
    (b"fo", 0x08985907b541d342),
    (b"foo", 0xdcb27518fed9d577),
    (b"foob", 0xdd120e790c2512af),
    (b"fooba", 0xcac165afa2fef40a),
    (b"foobar", 0x85944171f73967e8),
];

/// splitmix64: a tiny deterministic generator so the property checks are
/// reproducible without a dependency.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[test]
fn fnv1a64_matches_published_vectors() {
    for (input, expected) in FNV1A_64_VECTORS {
        assert_eq!(
            fnv1a64(input),
            *expected,
            "FNV-1a-64 of {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn point_hash_uses_the_canonical_id() {
    assert_eq!(point_hash(&PointId::Num(7)), fnv1a64(b"7"));
    assert_eq!(
        point_hash(&PointId::Num(7)),
        point_hash(&PointId::Str("7".into()))
    );
    assert_eq!(
        point_hash(&PointId::Str("foobar".into())),
        0x85944171f73967e8
    );
}

#[test]
fn shard_counts_outside_the_limit_are_rejected() {
    assert_eq!(split_hash_space(0), Err(RoutingError::ShardCount(0)));
    assert_eq!(
        split_hash_space(MAX_SHARDS + 1),
        Err(RoutingError::ShardCount(MAX_SHARDS + 1))
    );
    assert_eq!(shard_index(5, 0), Err(RoutingError::ShardCount(0)));
}

#[test]
fn one_shard_covers_everything() {
    assert_eq!(
        split_hash_space(1).expect("valid"),
        vec![HashRange {
            start: 0,
            end: u64::MAX
        }]
    );
}

#[test]
fn ranges_tile_the_hash_space_with_near_equal_sizes() {
    for shards in 1..=MAX_SHARDS {
        let ranges = split_hash_space(shards).expect("valid count");
        assert_eq!(ranges.len(), shards as usize);
        let sizes: Vec<u128> = ranges
            .iter()
            .map(|r| u128::from(r.end) - u128::from(r.start) + 1)
            .collect();
        assert_eq!(sizes.iter().sum::<u128>(), HASH_SPACE, "{shards} shards");
        let (min, max) = (sizes.iter().min(), sizes.iter().max());
        assert!(max.zip(min).is_some_and(|(a, b)| a - b <= 1), "{shards}");
        // ShardMap::new checks sortedness, contiguity and both ends.
        ShardMap::new(ranges).expect("even split tiles the space");
    }
}

#[test]
fn every_hash_falls_in_exactly_one_range() {
    let mut state = 0x5eed;
    for shards in [1, 2, 3, 4, 5, 7, 16, 100, 255, 1000, 1023, 1024] {
        let ranges = split_hash_space(shards).expect("valid count");
        let map = ShardMap::new(ranges.clone()).expect("tiles");
        // Every boundary and its neighbours, the ends, and random hashes.
        let mut probes = vec![0, 1, u64::MAX - 1, u64::MAX];
        for r in &ranges {
            probes.extend([r.start, r.end, r.start.saturating_sub(1)]);
            probes.push(r.end.saturating_add(1));
        }
        probes.extend((0..2000).map(|_| splitmix64(&mut state)));
        for hash in probes {
            let holders: Vec<usize> = ranges
                .iter()
                .enumerate()
                .filter(|(_, r)| r.contains(hash))
                .map(|(i, _)| i)
                .collect();
            assert_eq!(holders.len(), 1, "hash {hash} with {shards} shards");
            assert_eq!(map.index_of_hash(hash), holders[0]);
            assert_eq!(
                shard_index(hash, shards).expect("valid") as usize,
                holders[0],
                "arithmetic lookup of {hash} with {shards} shards"
            );
        }
    }
}

#[test]
fn points_spread_over_shards() {
    let map = ShardMap::even(4).expect("valid");
    let mut counts = [0usize; 4];
    for n in 0..10_000u64 {
        counts[map.index_of_point(&PointId::Num(n))] += 1;
    }
    // FNV-1a over decimal strings is not perfectly uniform, but no shard of
    // four should be starved or hold most of the points.
    for count in counts {
        assert!((1500..=3500).contains(&count), "{counts:?}");
    }
}

#[test]
fn broken_stored_ranges_are_rejected() {
    let gap = vec![
        HashRange { start: 0, end: 10 },
        HashRange {
            start: 12,
            end: u64::MAX,
        },
    ];
    assert!(matches!(
        ShardMap::new(gap),
        Err(RoutingError::NotContiguous(_))
    ));
    let short = vec![HashRange { start: 0, end: 10 }];
    assert!(ShardMap::new(short).is_err());
    let late = vec![HashRange {
        start: 1,
        end: u64::MAX,
    }];
    assert!(ShardMap::new(late).is_err());
    assert!(ShardMap::new(Vec::new()).is_err());
}
