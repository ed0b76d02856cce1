//! Tests of payload filter validation and evaluation.

use serde_json::json;

use super::*;

fn keyword(s: &str) -> pb::MatchValue {
    pb::MatchValue {
        value: Some(pb::match_value::Value::Keyword(s.into())),
    }
}

fn integer(i: i64) -> pb::MatchValue {
    pb::MatchValue {
        value: Some(pb::match_value::Value::Integer(i)),
    }
}

fn match_value(key: &str, value: pb::MatchValue) -> pb::Condition {
    pb::Condition {
        key: key.into(),
        condition: Some(pb::condition::Condition::Match(pb::Match {
            kind: Some(pb::r#match::Kind::Value(value)),
        })),
    }
}

fn match_any(key: &str, values: Vec<pb::MatchValue>) -> pb::Condition {
    pb::Condition {
        key: key.into(),
        condition: Some(pb::condition::Condition::Match(pb::Match {
            kind: Some(pb::r#match::Kind::Any(pb::MatchAny { values })),
        })),
    }
}

fn range(key: &str, gte: Option<f64>, lt: Option<f64>) -> pb::Condition {
    pb::Condition {
        key: key.into(),
        condition: Some(pb::condition::Condition::Range(pb::Range {
            gte,
            lt,
            ..pb::Range::default()
        })),
    }
}

fn nested(filter: pb::Filter) -> pb::Condition {
    pb::Condition {
        key: String::new(),
        condition: Some(pb::condition::Condition::Filter(filter)),
    }
}

fn compile(filter: pb::Filter) -> PayloadFilter {
    PayloadFilter::from_proto(&filter, "filter").expect("valid filter")
}

#[test]
fn must_should_and_must_not_combine() {
    let filter = compile(pb::Filter {
        must: vec![match_value("color", keyword("red"))],
        should: vec![
            range("price", Some(10.0), Some(20.0)),
            match_value(
                "sale",
                pb::MatchValue {
                    value: Some(pb::match_value::Value::Boolean(true)),
                },
            ),
        ],
        must_not: vec![match_any("tags", vec![keyword("broken")])],
    });
    assert!(filter.matches(&json!({"color": "red", "price": 15})));
    assert!(filter.matches(&json!({"color": "red", "price": 99, "sale": true})));
    assert!(
        !filter.matches(&json!({"color": "red", "price": 99})),
        "no should holds"
    );
    assert!(
        !filter.matches(&json!({"color": "blue", "price": 15})),
        "must fails"
    );
    assert!(
        !filter.matches(&json!({"color": "red", "price": 15, "tags": ["new", "broken"]})),
        "must_not holds for an array element"
    );
    assert!(
        !filter.matches(&serde_json::Value::Null),
        "no payload: must fails"
    );
}

#[test]
fn dotted_keys_descend_objects_and_arrays() {
    let filter = compile(pb::Filter {
        must: vec![match_value("a.b", integer(3))],
        ..pb::Filter::default()
    });
    assert!(filter.matches(&json!({"a": {"b": 3}})));
    assert!(filter.matches(&json!({"a": [{"b": 1}, {"b": 3}]})));
    assert!(
        filter.matches(&json!({"a": {"b": 3.0}})),
        "3.0 is the integer 3"
    );
    assert!(!filter.matches(&json!({"a": {"b": 3.5}})));
    assert!(
        !filter.matches(&json!({"a": {"b": "3"}})),
        "strings are not integers"
    );
    assert!(!filter.matches(&json!({"a": 3})));
}

#[test]
fn range_bounds_are_inclusive_or_exclusive_as_named() {
    let filter = compile(pb::Filter {
        must: vec![range("x", Some(1.0), Some(2.0))],
        ..pb::Filter::default()
    });
    assert!(filter.matches(&json!({"x": 1})));
    assert!(filter.matches(&json!({"x": 1.5})));
    assert!(!filter.matches(&json!({"x": 2})));
    assert!(!filter.matches(&json!({"x": "1.5"})));
}

#[test]
fn nested_filters_and_missing_keys() {
    let inner = pb::Filter {
        should: vec![
            match_value("k", keyword("a")),
            match_value("k", keyword("b")),
        ],
        ..pb::Filter::default()
    };
    let filter = compile(pb::Filter {
        must: vec![nested(inner)],
        must_not: vec![match_value("gone", keyword("x"))],
        ..pb::Filter::default()
    });
    assert!(filter.matches(&json!({"k": "b"})));
    assert!(!filter.matches(&json!({"k": "c"})));
    assert!(
        PayloadFilter::default().matches(&json!({})),
        "the empty filter matches all"
    );
}

#[test]
fn malformed_filters_name_the_field() {
    let cases = [
        (
            pb::Filter {
                must: vec![match_value("", keyword("a"))],
                ..Default::default()
            },
            "filter.must[0].key",
        ),
        (
            pb::Filter {
                should: vec![match_value("a..b", keyword("a"))],
                ..Default::default()
            },
            "filter.should[0].key",
        ),
        (
            pb::Filter {
                must: vec![range("x", None, None)],
                ..Default::default()
            },
            "filter.must[0].range",
        ),
        (
            pb::Filter {
                must: vec![range("x", Some(f64::NAN), None)],
                ..Default::default()
            },
            "filter.must[0].range",
        ),
        (
            pb::Filter {
                must_not: vec![match_any("x", vec![])],
                ..Default::default()
            },
            "filter.must_not[0].match.any",
        ),
        (
            pb::Filter {
                must: vec![pb::Condition {
                    key: "x".into(),
                    condition: None,
                }],
                ..Default::default()
            },
            "filter.must[0]",
        ),
        (
            pb::Filter {
                must: vec![nested(pb::Filter {
                    must: vec![range("y", None, None)],
                    ..Default::default()
                })],
                ..Default::default()
            },
            "filter.must[0].filter.must[0].range",
        ),
    ];
    for (filter, field) in cases {
        let err = PayloadFilter::from_proto(&filter, "filter").expect_err(field);
        assert_eq!(err.field, field, "{err}");
    }
}

#[test]
fn nesting_is_bounded() {
    let mut filter = pb::Filter::default();
    for _ in 0..(MAX_FILTER_DEPTH + 2) {
        filter = pb::Filter {
            must: vec![nested(filter)],
            ..Default::default()
        };
    }
    assert!(PayloadFilter::from_proto(&filter, "filter").is_err());
}
