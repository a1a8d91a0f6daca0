//! Compiles the project's own `.proto` files with `protox` (pure Rust), so no
//! system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/common/common.proto",
        "proto/common/configtx.proto",
        "proto/common/configuration.proto",
        "proto/common/policies.proto",
        "proto/common/msp_principal.proto",
        "proto/msp/identities.proto",
        "proto/msp/msp_config.proto",
        "proto/orderer/ab.proto",
        "proto/orderer/configuration.proto",
        "proto/orderer/kafka.proto",
        "proto/peer/configuration.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .btree_map(".")
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
