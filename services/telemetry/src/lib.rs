//! Logging setup shared by the Vectron binaries: one line per event to stderr,
//! filtered by `RUST_LOG` (default `info`). Does I/O (stderr) only when logging.

use tracing_subscriber::EnvFilter;

/// Installs the global tracing subscriber. Safe to call more than once; only
/// the first call has an effect.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
