//! The `vectron` crate's integration suite: one test binary with a module per
//! area. Process tests start real `vectron` processes on loopback.

mod auth_matrix;
mod cli_contract;
mod cluster_harness;
mod front_door;
mod gateway_dev;
mod harness;
mod internal_tls;
mod pd_cluster;
mod playground;
mod readme_walkthrough;
mod scheduler;
mod worker_cluster;
