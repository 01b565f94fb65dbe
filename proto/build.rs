//! Compiles `vitals/v1/*.proto` with protox (pure Rust), so a machine without
//! `protoc` builds Vitals with cargo alone.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "vitals/v1/customer.proto",
    "vitals/v1/event.proto",
    "vitals/v1/evaluation.proto",
    "vitals/v1/model.proto",
    "vitals/v1/followup.proto",
    "vitals/v1/portfolio.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // tonic-prost-build's emit_rerun_if_changed is a no-op in 0.14: say it ourselves.
    println!("cargo:rerun-if-changed=vitals");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let fds = protox::compile(PROTOS, ["."])?;
    std::fs::write(
        out_dir.join("vitals_v1_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
