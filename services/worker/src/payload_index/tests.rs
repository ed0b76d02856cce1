//! The index must select exactly the rows whose stored payload the filter
//! matches: checked against `PayloadFilter::matches` on generated payloads
//! and filters, through inserts, replacements and removals.

use serde_json::{Value, json};

use super::*;
use crate::filter::{Bounds, Condition, PayloadFilter, Scalar};

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: [&str; 4] = ["red", "green", "blue", ""];

fn scalar_value(rng: &mut Rng) -> Value {
    match rng.below(6) {
        0 => json!(WORDS[rng.below(4) as usize]),
        1 => json!(rng.below(2) == 0),
        2 => json!(rng.below(7) as i64 - 3),
        3 => json!((rng.below(13) as f64 - 6.0) / 2.0),
        4 => json!("x".repeat(MAX_INDEXED_KEYWORD_BYTES + 1)),
        _ => Value::Null,
    }
}

fn payload(rng: &mut Rng) -> Value {
    let mut object = serde_json::Map::new();
    for key in ["a", "b", "c"] {
        match rng.below(5) {
            0 => {}
            1 => {
                object.insert(key.into(), json!([scalar_value(rng), scalar_value(rng)]));
            }
            2 => {
                object.insert(
                    key.into(),
                    json!({"d": scalar_value(rng), "e": [{"d": scalar_value(rng)}]}),
                );
            }
            _ => {
                object.insert(key.into(), scalar_value(rng));
            }
        }
    }
    Value::Object(object)
}

fn key(rng: &mut Rng) -> Vec<String> {
    let top = ["a", "b", "c"][rng.below(3) as usize].to_owned();
    match rng.below(3) {
        0 => vec![top, "d".into()],
        1 => vec![top, "e".into(), "d".into()],
        _ => vec![top],
    }
}

fn match_scalar(rng: &mut Rng) -> Scalar {
    match rng.below(3) {
        0 => Scalar::Keyword(WORDS[rng.below(4) as usize].into()),
        1 => Scalar::Boolean(rng.below(2) == 0),
        _ => Scalar::Integer(rng.below(7) as i64 - 3),
    }
}

fn condition(rng: &mut Rng, depth: usize) -> Condition {
    match rng.below(if depth < 2 { 4 } else { 3 }) {
        0 | 1 => Condition::Match {
            key: key(rng),
            values: (0..1 + rng.below(2)).map(|_| match_scalar(rng)).collect(),
        },
        2 => {
            let bound =
                |rng: &mut Rng| (rng.below(2) == 0).then(|| (rng.below(13) as f64 - 6.0) / 2.0);
            let mut bounds = Bounds {
                gt: bound(rng),
                gte: bound(rng),
                lt: bound(rng),
                lte: bound(rng),
            };
            if [bounds.gt, bounds.gte, bounds.lt, bounds.lte]
                .iter()
                .all(Option::is_none)
            {
                bounds.gte = Some(0.0);
            }
            Condition::Range {
                key: key(rng),
                bounds,
            }
        }
        _ => Condition::Nested(Box::new(filter(rng, depth + 1))),
    }
}

fn filter(rng: &mut Rng, depth: usize) -> PayloadFilter {
    let list = |rng: &mut Rng| {
        (0..rng.below(3))
            .map(|_| condition(rng, depth))
            .collect::<Vec<_>>()
    };
    PayloadFilter {
        must: list(rng),
        should: list(rng),
        must_not: list(rng),
    }
}

fn expected(rows: &HashMap<u64, Value>, filter: &PayloadFilter) -> Vec<u64> {
    let mut matching: Vec<u64> = rows
        .iter()
        .filter(|(_, payload)| filter.matches(payload))
        .map(|(row, _)| *row)
        .collect();
    matching.sort_unstable();
    matching
}

fn selected(index: &PayloadIndex, selection: &Bitmap) -> Vec<u64> {
    let mut rows: Vec<u64> = index.rows(selection).collect();
    rows.sort_unstable();
    rows
}

#[test]
fn selects_exactly_the_rows_a_payload_check_accepts() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut index = PayloadIndex::default();
    let mut rows: HashMap<u64, Value> = HashMap::new();
    let mut answered = 0;
    for round in 0..40 {
        // Inserts, replacements and removals between rounds of queries.
        for _ in 0..30 {
            let row = rng.below(60) * 1_000_003;
            if rng.below(4) == 0 {
                assert_eq!(index.remove(row), rows.remove(&row).is_some());
            } else {
                let value = payload(&mut rng);
                index.insert(row, &serde_json::to_vec(&value).unwrap());
                rows.insert(row, value);
            }
        }
        assert_eq!(index.len(), rows.len());
        for _ in 0..50 {
            let filter = filter(&mut rng, 0);
            if let Some(selection) = index.select(&filter) {
                answered += 1;
                assert_eq!(
                    selected(&index, &selection),
                    expected(&rows, &filter),
                    "round {round}: {filter:?}"
                );
                for (row, payload) in &rows {
                    assert_eq!(index.selects_row(&selection, *row), filter.matches(payload));
                }
            }
        }
    }
    assert!(
        answered > 1_500,
        "only {answered} filters answered from memory"
    );
}

#[test]
fn filters_past_what_is_indexed_are_left_to_payload_checks() {
    let mut index = PayloadIndex::default();
    index.insert(1, br#"{"a": "short"}"#);
    let long = "y".repeat(MAX_INDEXED_KEYWORD_BYTES + 1);
    let long_match = PayloadFilter {
        must: vec![Condition::Match {
            key: vec!["a".into()],
            values: vec![Scalar::Keyword(long)],
        }],
        ..Default::default()
    };
    assert!(index.select(&long_match).is_none());
    let deep = PayloadFilter {
        must_not: vec![Condition::Match {
            key: vec!["k".into(); MAX_INDEXED_DEPTH + 1],
            values: vec![Scalar::Boolean(true)],
        }],
        ..Default::default()
    };
    assert!(index.select(&deep).is_none());
    // An unknown field is known to match nothing.
    let unknown = PayloadFilter {
        must: vec![Condition::Match {
            key: vec!["zz".into()],
            values: vec![Scalar::Integer(1)],
        }],
        ..Default::default()
    };
    assert_eq!(index.select(&unknown).map(|s| s.count()), Some(0));
}

#[test]
fn numbers_keep_their_order_as_keys() {
    let values = [-1e300, -2.5, -1.0, -0.0, 0.0, 1e-300, 1.0, 2.5, 1e300];
    for pair in values.windows(2) {
        assert!(NumberKey::of(pair[0]) <= NumberKey::of(pair[1]), "{pair:?}");
        assert_eq!(NumberKey::of(pair[1]).value(), pair[1]);
    }
    assert_eq!(NumberKey::of(-0.0), NumberKey::of(0.0));
    assert_eq!(NumberKey::of(-2.5).value(), -2.5);
}

#[test]
fn removed_slots_are_reused_without_leaking_old_terms() {
    let mut index = PayloadIndex::default();
    index.insert(10, br#"{"tag": 1}"#);
    index.remove(10);
    index.insert(20, br#"{"tag": 2}"#);
    let tag = |n: i64| PayloadFilter {
        must: vec![Condition::Match {
            key: vec!["tag".into()],
            values: vec![Scalar::Integer(n)],
        }],
        ..Default::default()
    };
    assert_eq!(index.select(&tag(1)).map(|s| s.count()), Some(0));
    let two = index.select(&tag(2)).unwrap();
    assert_eq!(index.rows(&two).collect::<Vec<_>>(), vec![20]);
    assert!(
        index.fields[0].numbers.len() == 1,
        "emptied postings pruned"
    );
}
