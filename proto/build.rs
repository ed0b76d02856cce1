//! Compiles the .proto contract with a vendored protoc, so a fresh machine
//! needs no system protobuf compiler.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "vectron/common/v1/common.proto",
    "vectron/v1/vectron.proto",
    "vectron/pd/v1/pd.proto",
    "vectron/worker/v1/worker.proto",
    "vectron/raft/v1/raft.proto",
    "vectron/auth/v1/auth.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let well_known = protoc_bin_vendored::include_path()?;
    // SAFETY: a build script is single-threaded; nothing reads the
    // environment concurrently.
    unsafe { std::env::set_var("PROTOC", protoc) };

    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let protos: Vec<PathBuf> = PROTOS.iter().map(PathBuf::from).collect();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(&protos, &[PathBuf::from("."), well_known])?;
    Ok(())
}
