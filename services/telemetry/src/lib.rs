//! Logging setup shared by the Vectron binaries: one line per event to stderr,
//! filtered by `RUST_LOG`. Without it, Vectron's own crates log at `info`
//! and dependencies (openraft, hyper, RocksDB bindings, hnsw_rs) only at
//! `warn`, so a quiet cluster prints its own events, not every election
//! message and index dump. Does I/O (stderr) only when logging.

use tracing_subscriber::EnvFilter;

/// The filter used when `RUST_LOG` is not set.
pub const DEFAULT_FILTER: &str = "warn,vectron=info,vectron_pd=info,vectron_worker=info,\
vectron_gateway=info,vectron_auth=info,vectron_raft=info,vectron_config=info,\
vectron_operator=info,operator=info";

/// Installs the global tracing subscriber. Safe to call more than once; only
/// the first call has an effect.
pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_filter_parses_and_keeps_dependencies_at_warn() {
        let filter = EnvFilter::try_new(DEFAULT_FILTER).expect("the default filter parses");
        let shown = filter.to_string();
        assert!(
            shown.starts_with("warn") || shown.contains(",warn"),
            "{shown}"
        );
        for own in ["vectron=info", "vectron_worker=info", "vectron_pd=info"] {
            assert!(shown.contains(own), "{own} missing from {shown}");
        }
        assert!(!shown.contains("openraft=info"), "{shown}");
    }
}
