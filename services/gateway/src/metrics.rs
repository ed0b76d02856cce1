//! Gateway metrics in the Prometheus text format: REST requests by route,
//! method and status with a latency histogram, requests refused by the rate
//! limit and the in-flight cap, and shard-call retries. Served on a separate
//! listener (`--metrics-addr`) so the public port keeps its default-deny
//! rule. No I/O of its own.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Counters of one gateway.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    /// Shard calls retried on another replica or after a routing refresh.
    pub shard_retries: AtomicU64,
}

impl Metrics {
    /// Records one finished REST request.
    pub fn record(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((route.to_owned(), method.to_owned(), status))
            .or_default() += 1;
        let seconds = elapsed.as_secs_f64();
        let mut latency = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let histogram = latency.entry(route.to_owned()).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                histogram.counts[i] += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// Counts one shard-call retry.
    pub fn retried(&self) {
        self.shard_retries.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP vectron_gateway_requests_total REST requests by route, method and status.\n",
        );
        out.push_str("# TYPE vectron_gateway_requests_total counter\n");
        for ((route, method, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "vectron_gateway_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP vectron_gateway_request_seconds REST request latency by route.\n");
        out.push_str("# TYPE vectron_gateway_request_seconds histogram\n");
        for (route, h) in self
            .latency
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "vectron_gateway_request_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "vectron_gateway_request_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "vectron_gateway_request_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "vectron_gateway_request_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP vectron_gateway_shard_retries_total Shard calls retried on another replica or after a routing refresh.\n");
        out.push_str("# TYPE vectron_gateway_shard_retries_total counter\n");
        let _ = writeln!(
            out,
            "vectron_gateway_shard_retries_total {}",
            self.shard_retries.load(Ordering::Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_buckets_render() {
        let metrics = Metrics::default();
        metrics.record("/v1/collections", "GET", 200, Duration::from_millis(3));
        metrics.record("/v1/collections", "GET", 200, Duration::from_millis(30));
        metrics.record("/v1/collections", "GET", 429, Duration::from_micros(100));
        metrics.retried();
        let text = metrics.render();
        assert!(text.contains("vectron_gateway_requests_total{route=\"/v1/collections\",method=\"GET\",status=\"200\"} 2"), "{text}");
        assert!(text.contains("status=\"429\"} 1"), "{text}");
        assert!(
            text.contains(
                "vectron_gateway_request_seconds_bucket{route=\"/v1/collections\",le=\"0.005\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("vectron_gateway_request_seconds_count{route=\"/v1/collections\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("vectron_gateway_shard_retries_total 1"),
            "{text}"
        );
    }
}
