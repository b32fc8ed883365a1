//! Generates the protobuf types from `proto/command.proto` with the pure-Rust
//! `protox` compiler, so that no `protoc` binary is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/command.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    let mut config = prost_build::Config::new();
    config
        .type_attribute(".", "#[derive(serde::Serialize, serde::Deserialize)]")
        .type_attribute(".", "#[serde(rename_all = \"snake_case\")]");
    // Enumerations are numbers in protobuf; in JSON they are written by name.
    for (field, module) in [
        ("Cluster.protocol", "listener_protocol"),
        ("Cluster.load_balancing", "load_balancing_algorithm"),
        ("Cluster.load_metric", "load_metric"),
        ("PathRule.kind", "path_rule_kind"),
        ("RemoveListener.protocol", "listener_protocol"),
        ("ActivateListener.protocol", "listener_protocol"),
        ("DeactivateListener.protocol", "listener_protocol"),
        ("Response.status", "response_status"),
        ("WorkerResponse.status", "response_status"),
        ("WorkerInfo.state", "worker_run_state"),
        ("Event.kind", "event_kind"),
    ] {
        config.field_attribute(
            format!("sluice.command.{field}"),
            format!("#[serde(with = \"crate::serde_enums::{module}\")]"),
        );
    }
    config.compile_fds(descriptors)?;
    Ok(())
}
