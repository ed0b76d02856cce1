//! The chaos workload: concurrent clients treating each point id as a
//! register, through the gateway's REST API — put (upsert of the key's
//! point with a new value in its payload), strong get, delete — each
//! operation recorded with its call and return time and its outcome. A client
//! error below 500 (other than 408) means nothing was written; a timeout, a
//! 5xx or a lost connection leaves a write's outcome unknown. Does network
//! I/O.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use vectron_client::{Client, ClientError, Point, PointId};

use super::history::{History, OpKind, Outcome, Record};
use super::rng::Rng;

/// Dimension of the workload's vectors.
pub const DIMENSION: usize = 8;

/// Longest an operation may take before it counts as unknown (longer than
/// the gateway's own 20 s deadline, so its answer normally arrives).
pub const OP_TIMEOUT: Duration = Duration::from_secs(25);

/// The vector of key `key`: distinct for every key, so searching a key's
/// vector must find that key first.
pub fn vector(key: u64) -> Vec<f32> {
    let x = key as f32 + 1.0;
    (0..DIMENSION)
        .map(|i| ((i as f32 + 1.0) * x * 0.37).sin() * 10.0 + i as f32)
        .collect()
}

fn outcome_of(error: &ClientError) -> Outcome {
    match error.status() {
        Some(status) if status < 500 && status != 408 => Outcome::Failed,
        _ => Outcome::Unknown,
    }
}

fn value_of(point: &Point) -> String {
    point
        .payload
        .as_ref()
        .and_then(|p| p.get("v"))
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_owned()
}

/// One operation of `client` on `key`, recorded in `history`.
pub async fn operate(
    http: &Client,
    collection: &str,
    history: &History,
    client: usize,
    key: u64,
    op: OpKind,
    value: String,
) -> Outcome {
    let id = PointId::Num(key);
    let mut record = Record {
        client,
        key: key.to_string(),
        op,
        value: value.clone(),
        call: history.now(),
        returned: 0,
        outcome: Outcome::Ok,
        found: false,
        read: String::new(),
        deleted: 0,
    };
    let outcome = match op {
        OpKind::Put => {
            let point = Point::new(key, vector(key)).with_payload(json!({ "v": value }));
            match tokio::time::timeout(OP_TIMEOUT, http.upsert(collection, &[point])).await {
                Ok(Ok(_)) => Outcome::Ok,
                Ok(Err(e)) => outcome_of(&e),
                Err(_) => Outcome::Unknown,
            }
        }
        OpKind::Get => {
            match tokio::time::timeout(OP_TIMEOUT, http.get_point(collection, &id, "strong")).await
            {
                Ok(Ok(found)) => {
                    record.found = found.is_some();
                    record.read = found.as_ref().map(value_of).unwrap_or_default();
                    Outcome::Ok
                }
                Ok(Err(e)) => outcome_of(&e),
                Err(_) => Outcome::Unknown,
            }
        }
        OpKind::Delete => {
            let body = json!({ "ids": [key] });
            match tokio::time::timeout(OP_TIMEOUT, http.delete_points(collection, &body)).await {
                Ok(Ok(deleted)) => {
                    record.deleted = deleted;
                    Outcome::Ok
                }
                Ok(Err(e)) => outcome_of(&e),
                Err(_) => Outcome::Unknown,
            }
        }
    };
    record.returned = history.now();
    record.outcome = outcome;
    history.push(record);
    outcome
}

/// Runs `clients` clients until `stop` is set: each picks a key and an
/// operation (half reads, a third puts, the rest deletes), with a short pause
/// between operations so histories stay checkable.
pub fn spawn_clients(
    http: &str,
    collection: &str,
    keys: u64,
    clients: usize,
    history: Arc<History>,
    stop: Arc<AtomicBool>,
    rng: &mut Rng,
) -> Result<Vec<tokio::task::JoinHandle<()>>, ClientError> {
    (0..clients)
        .map(|client| {
            let http = Client::new(http)?;
            let collection = collection.to_owned();
            let history = history.clone();
            let stop = stop.clone();
            let mut rng = rng.fork();
            Ok(tokio::spawn(async move {
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = rng.below(keys);
                    let roll = rng.below(100);
                    let op = if roll < 50 {
                        OpKind::Get
                    } else if roll < 85 {
                        OpKind::Put
                    } else {
                        OpKind::Delete
                    };
                    seq += 1;
                    let value = format!("c{client}-{seq}");
                    operate(&http, &collection, &history, client, key, op, value).await;
                    tokio::time::sleep(Duration::from_millis(5 + rng.below(15))).await;
                }
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_vectors_are_distinct_and_finite() {
        let vectors: Vec<Vec<f32>> = (0..1000).map(vector).collect();
        for (i, v) in vectors.iter().enumerate() {
            assert_eq!(v.len(), DIMENSION);
            assert!(v.iter().all(|x| x.is_finite()));
            if i > 0 {
                assert_ne!(v, &vectors[i - 1]);
            }
        }
    }

    #[test]
    fn client_errors_split_into_refused_and_unknown() {
        let api = |status| ClientError::Api {
            status,
            code: "x".into(),
            message: "m".into(),
        };
        assert_eq!(outcome_of(&api(400)), Outcome::Failed);
        assert_eq!(outcome_of(&api(429)), Outcome::Failed);
        assert_eq!(outcome_of(&api(408)), Outcome::Unknown);
        assert_eq!(outcome_of(&api(503)), Outcome::Unknown);
        assert_eq!(
            outcome_of(&ClientError::Transport("reset".into())),
            Outcome::Unknown
        );
    }
}
