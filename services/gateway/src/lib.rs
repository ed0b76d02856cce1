//! The gateway: Vectron's public REST and gRPC API. Stateless apart from a
//! routing cache; validates whole requests, checks credentials through the
//! auth service, groups writes by shard and sends them to shard leaders in
//! parallel, and fans searches out to every shard, merging the global top-k.
//!
//! Layers, each depending only on those before it: `error` / `model` /
//! `validate` / `convert` (pure) → `routing` (PD cache) → `dispatch` (worker
//! calls with retries) → `api` (operations) → `access` / `limits` / `guard`
//! (checks) → `users` (user management with its checks) → `json` + `rest`,
//! `grpc` (front ends) → `listener` (public ports, optionally TLS) → `server`.

pub mod access;
pub mod api;
pub mod convert;
pub mod dispatch;
pub mod error;
pub mod grpc;
pub mod guard;
pub mod json;
pub mod limits;
pub mod listener;
pub mod metrics;
pub mod model;
pub mod rest;
pub mod routing;
pub mod server;
pub mod users;
pub mod validate;

pub use access::Access;
pub use error::{ApiError, ErrorKind};
pub use limits::OverloadConfig;
pub use listener::PublicTlsFiles;
pub use server::{GatewayConfig, GatewayError, run};
