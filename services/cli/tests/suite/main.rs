//! The `vectron` crate's integration suite: one test binary with a module per
//! area. Process tests start real `vectron` processes on loopback.

mod cli_contract;
mod harness;
mod pd_cluster;
mod worker_cluster;
