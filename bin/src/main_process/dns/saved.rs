//! State files with backends given by host name: `state save` writes each as
//! configured (its name, not the addresses it resolved to), `state load` reads it
//! back and resolves it like a reload.
//!
//! The clusters etcd manages are not written: etcd holds them (and the etcd cache
//! keeps them for a start without etcd).

use std::io::{BufRead, Write};

use sluice_command::proto::{self, request::RequestType, Request};
use sluice_command::state::StateError;

use super::super::{etcd_source, lock, MainProcess};

/// Writes the state as `ConfigState::save` does, with each backend given by host
/// name in place of the backends resolved from it, and without the clusters etcd
/// manages; returns how many of those were left out.
pub(crate) fn save_state(main: &MainProcess, mut writer: impl Write) -> Result<usize, String> {
    let templates: Vec<proto::Backend> = lock(&main.dns.registry)
        .templates
        .values()
        .flatten()
        .map(|template| template.backend.clone())
        .collect();
    let requests = lock(&main.state).generate_requests();
    let resolved = |request: &Request| {
        matches!(&request.request_type,
            Some(RequestType::AddBackend(add)) if add.backend.resolved_from.is_some())
    };
    let managed = etcd_source::managed_ids(main);
    let of_etcd =
        |request: &Request| etcd_source::cluster_of(request).is_some_and(|id| managed.contains(id));
    let named = templates.into_iter().map(|backend| Request {
        request_type: Some(RequestType::AddBackend(proto::AddBackend { backend })),
    });
    for request in requests
        .into_iter()
        .filter(|r| !resolved(r) && !of_etcd(r))
        .chain(named)
    {
        serde_json::to_writer(&mut writer, &request).map_err(|e| e.to_string())?;
        writer.write_all(b"\n").map_err(|e| e.to_string())?;
    }
    writer.flush().map_err(|e| e.to_string())?;
    Ok(managed.len())
}

/// Reads the requests of a state file, each with its line.
pub(crate) fn read_state(reader: impl BufRead) -> Result<Vec<(usize, Request)>, String> {
    let mut requests = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        if line.trim().is_empty() {
            continue;
        }
        let request: Request =
            serde_json::from_str(&line).map_err(|error| format!("line {}: {error}", index + 1))?;
        requests.push((index + 1, request));
    }
    if requests.is_empty() {
        return Err(StateError::EmptyStateFile.to_string());
    }
    Ok(requests)
}
