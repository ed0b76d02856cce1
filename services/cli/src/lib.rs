//! The `vectron` binary's library half: argument definitions and the dispatch
//! of each subcommand to the service crate that implements it.

pub mod args;
pub mod bench;
pub mod chaos;
pub mod dev;
pub mod internal_tls;
pub mod playground;
pub mod run;
