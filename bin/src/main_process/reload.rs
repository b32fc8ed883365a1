//! Reload, state save and state load: the target state is built aside, the
//! difference with the current state is applied like ctl requests.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use log::info;
use sluice_command::config::Config;
use sluice_command::proto::{
    self, request::RequestType, response_content::ContentType, Request, Response,
};
use sluice_command::state::ConfigState;

use super::changes::{apply_serialized, ChangeError};
use super::dispatch::{failure, ok, with_content};
use super::{lock, state_from_config, MainProcess};

/// Reloads `path`, or the file main was started with; an invalid file changes nothing.
pub(crate) fn reload(main: &MainProcess, path: Option<&str>) -> Response {
    let path = match path
        .map(PathBuf::from)
        .or_else(|| lock(&main.config).path.clone())
    {
        Some(path) => path,
        None => {
            return failure(
                "nothing to reload: main runs on the embedded default config; pass -c FILE",
            )
        }
    };
    let config = match Config::load(&path) {
        Ok(config) => config,
        Err(error) => {
            return failure(&format!(
                "reload refused, nothing changed: {}: {error}",
                path.display()
            ))
        }
    };
    let target = match state_from_config(&config) {
        Ok(state) => state,
        Err(error) => {
            return failure(&format!(
                "reload refused, nothing changed: {}: {error:#}",
                path.display()
            ))
        }
    };
    main.warn_restart_only_changes(&config);
    let response = converge(main, &target, &format!("reloaded {}", path.display()));
    if response.status == proto::ResponseStatus::Ok as i32 {
        *lock(&main.config) = config;
        main.events.publish(proto::Event {
            kind: proto::EventKind::ConfigurationReloaded as i32,
            ..Default::default()
        });
    }
    response
}

/// Writes the current state to `path`.
pub(crate) fn save_state(main: &MainProcess, path: &str) -> Response {
    let file = match File::create(path) {
        Ok(file) => file,
        Err(error) => return failure(&format!("cannot create {path}: {error}")),
    };
    let mut writer = BufWriter::new(file);
    let saved = lock(&main.state).save(&mut writer);
    match saved
        .map_err(|e| e.to_string())
        .and_then(|_| writer.flush().map_err(|e| e.to_string()))
    {
        Ok(()) => {
            info!("state saved to {path}");
            ok(&format!("state saved to {path}"))
        }
        Err(error) => failure(&format!("cannot save the state to {path}: {error}")),
    }
}

/// Makes the state equal to the one saved in `path`.
pub(crate) fn load_state(main: &MainProcess, path: &str) -> Response {
    let file = match File::open(Path::new(path)) {
        Ok(file) => file,
        Err(error) => return failure(&format!("cannot open {path}: {error}")),
    };
    match ConfigState::load(BufReader::new(file)) {
        Ok(target) => converge(main, &target, &format!("state loaded from {path}")),
        Err(error) => failure(&format!(
            "cannot load the state from {path}, nothing changed: {error}"
        )),
    }
}

/// Applies `current.diff(target)` request by request and summarizes it; if
/// one is refused, the ones already applied are undone.
fn converge(main: &MainProcess, target: &ConfigState, what: &str) -> Response {
    let _serial = main.lock_changes();
    let original = lock(&main.state).clone();
    let requests = lock(&main.state).diff(target);
    let mut summary = proto::ReloadSummary::default();
    for request in &requests {
        match apply_serialized(main, request) {
            Ok(name) if is_removal(request) => summary.removed.push(name),
            Ok(name) => summary.added.push(name),
            Err(error) => {
                let outcome = match restore(main, &original) {
                    Ok(()) => "nothing changed".to_owned(),
                    Err(undo_error) => {
                        format!("and undoing the earlier changes failed: {undo_error}")
                    }
                };
                return failure(&format!("{what} refused, {outcome}: {error}"));
            }
        }
    }
    let message = format!(
        "{what}: {} added, {} removed",
        summary.added.len(),
        summary.removed.len()
    );
    info!("{message}");
    with_content(ok(&message), ContentType::Reload(summary))
}

/// Brings the state back to `original`; the caller holds the changes lock.
fn restore(main: &MainProcess, original: &ConfigState) -> Result<(), ChangeError> {
    let undo = lock(&main.state).diff(original);
    for request in &undo {
        apply_serialized(main, request)?;
    }
    Ok(())
}

fn is_removal(request: &Request) -> bool {
    matches!(
        &request.request_type,
        Some(RequestType::RemoveCluster(_))
            | Some(RequestType::RemoveBackend(_))
            | Some(RequestType::RemoveHttpFrontend(_))
            | Some(RequestType::RemoveTcpFrontend(_))
            | Some(RequestType::RemoveListener(_))
            | Some(RequestType::DeactivateListener(_))
    ) || matches!(&request.request_type, Some(RequestType::SetHealthCheck(set)) if set.config.is_none())
}
