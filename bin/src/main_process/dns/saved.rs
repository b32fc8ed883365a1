//! State files with backends given by host name: `state save` writes each as
//! configured (its name, not the addresses it resolved to), `state load` reads it
//! back and resolves it like a reload.

use std::io::{BufRead, Write};

use sluice_command::proto::{self, request::RequestType, Request};
use sluice_command::state::StateError;

use super::super::{lock, MainProcess};
use super::{Dns, Prepared};

/// Writes the state as `ConfigState::save` does, with each backend given by host
/// name in place of the backends resolved from it.
pub(crate) fn save_state(main: &MainProcess, mut writer: impl Write) -> Result<(), String> {
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
    let named = templates.into_iter().map(|backend| Request {
        request_type: Some(RequestType::AddBackend(proto::AddBackend { backend })),
    });
    for request in requests.into_iter().filter(|r| !resolved(r)).chain(named) {
        serde_json::to_writer(&mut writer, &request).map_err(|e| e.to_string())?;
        writer.write_all(b"\n").map_err(|e| e.to_string())?;
    }
    writer.flush().map_err(|e| e.to_string())
}

/// Reads a state file into the state it describes, its names resolved.
pub(crate) fn load_state(dns: &Dns, reader: impl BufRead) -> Result<Prepared, String> {
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
    dns.prepare_requests(requests)
}
