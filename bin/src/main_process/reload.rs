//! Reload, state save and state load: the target state is built aside, and the
//! difference with the current state is applied as one transaction (one batch
//! to each worker). A target with no listener or no cluster, when there are
//! some now, is refused unless the operator allows it: a truncated or empty
//! file must not empty the proxy.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use log::{error, info, warn};
use sluice_command::config::{AccessLogTarget, Config, ParseCache};
use sluice_command::proto::{
    self, request::RequestType, response_content::ContentType, Request, Response,
};
use sluice_command::state::ConfigState;

use super::changes::apply_serialized;
use super::dispatch::{failure, ok, with_content};
use super::dns::Prepared;
use super::reload_part;
use super::{lock, MainProcess};

/// Reloads `path`, or the file main was started with; an invalid file changes nothing.
pub(crate) fn reload(main: &MainProcess, path: Option<&str>, allow_empty: bool) -> Response {
    crate::notify::reloading();
    // Parsing the file used several times the memory of the state it built: the
    // caller returns it to the system once the answer is sent.
    let response = reload_file(main, path, allow_empty);
    if response.status == proto::ResponseStatus::Ok as i32 {
        crate::notify::ready(&main.serving_status());
    } else {
        crate::notify::ready(&format!("{}; last reload refused", main.serving_status()));
        error!("{}", response.message);
        main.events.publish(proto::Event {
            kind: proto::EventKind::ConfigurationRefused as i32,
            reason: Some(response.message.clone()),
            ..Default::default()
        });
    }
    response
}

fn reload_file(main: &MainProcess, path: Option<&str>, allow_empty: bool) -> Response {
    // Without a path, always the file `start` was given, never one an earlier reload named.
    let path = match path.map(PathBuf::from).or_else(|| main.start_path.clone()) {
        Some(path) => path,
        None => {
            return failure(
                "nothing to reload: main runs on the embedded default config; pass -c FILE",
            )
        }
    };
    // Held to the end: reloads are applied one at a time, each completing its
    // read if it compares the whole state.
    let mut cache = lock(&main.parse_cache);
    let mut config = match cache.load_changes(&path) {
        Ok(config) => config,
        Err(error) => {
            return failure(&format!(
                "reload refused, nothing changed: {}: {error}",
                path.display()
            ))
        }
    };
    let read_generation = cache.last_read().generation;
    let mut part = reload_part::plan(main, &config, cache.last_read());
    let mut whole = None;
    if part.is_none() {
        whole = match prepare_whole(main, &mut cache, read_generation, &mut config, &path) {
            Ok(prepared) => Some(prepared),
            Err(refused) => return failure(&refused),
        };
    }
    let what = format!("reload of {}", path.display());
    // Bound first: an address that cannot be bound refuses the reload before any change.
    if let Err(error) = main.move_metrics_endpoint(config.metrics_address) {
        return failure(&format!(
            "{what} refused, nothing changed: metrics_address: {error}"
        ));
    }
    let mut replaced = None;
    let mut response = None;
    if let Some(target) = &part {
        let _serial = main.lock_changes();
        let dropped = cache.dropped();
        if let Some((answer, old)) = reload_part::converge_part(main, target, dropped, |requests| {
            apply_and_summarize(main, requests, &what, Some(read_generation))
        }) {
            response = Some(answer);
            replaced = Some(old);
        }
    }
    let mut response = match response {
        Some(response) => response,
        None => {
            part = None;
            let prepared = match whole.take() {
                Some(prepared) => Ok(prepared),
                None => prepare_whole(main, &mut cache, read_generation, &mut config, &path),
            };
            match prepared {
                Ok(mut prepared) => {
                    let response = converge(
                        main,
                        &mut prepared.state,
                        &what,
                        allow_empty,
                        Some(read_generation),
                    );
                    whole = Some(prepared);
                    response
                }
                Err(refused) => failure(&refused),
            }
        }
    };
    if response.status != proto::ResponseStatus::Ok as i32 {
        let current = lock(&main.config).metrics_address;
        if let Err(error) = main.move_metrics_endpoint(current) {
            warn!("cannot move the metrics endpoint back to its address: {error}");
        }
        return response;
    }
    let restart_only = main.restart_only_changes(&config);
    match main.resize_workers(config.worker_count as usize) {
        Ok(done) if !done.is_empty() => response.message.push_str(&format!("; {done}")),
        Ok(_) => {}
        Err(error) => {
            warn!("{error}");
            response.message.push_str(&format!("; {error}"));
        }
    }
    if logging_to_apply(&lock(&main.config), &config) {
        if let Err(error) = main.apply_logging(&config) {
            warn!("{error}");
            response.message.push_str(&format!("; {error}"));
        }
    }
    if !restart_only.is_empty() {
        response.message.push_str(&format!(
            "; takes effect at the next start: {}",
            restart_only.join(", ")
        ));
    }
    // The running values of the keys only a restart applies stay those of the start.
    let mut kept = super::settings_only(config);
    {
        let current = lock(&main.config);
        kept.buffer_size = current.buffer_size;
        kept.max_connections = current.max_connections;
        kept.command_socket = current.command_socket.clone();
    }
    *lock(&main.config) = kept;
    let of_start_file = main.start_path.as_deref() == Some(path.as_path());
    let templates = match (part, whole, replaced) {
        (Some(part), _, Some(replaced)) => {
            let Prepared { state, templates } = part.prepared;
            main.file_index
                .patch(path, of_start_file, replaced, state, &main.state);
            templates
        }
        (_, Some(whole), _) => {
            main.file_index
                .build_from_state(path, of_start_file, whole.state);
            whole.templates
        }
        _ => Default::default(),
    };
    main.dns.commit(templates);
    main.events.publish(proto::Event {
        kind: proto::EventKind::ConfigurationReloaded as i32,
        ..Default::default()
    });
    response
}

/// The whole target state of `config`, read `read` of `cache`, or why it is refused.
fn prepare_whole(
    main: &MainProcess,
    cache: &mut ParseCache,
    read: u64,
    config: &mut Config,
    path: &Path,
) -> Result<Prepared, String> {
    if !cache.complete(read, config) {
        return Err(format!(
            "reload refused, nothing changed: {}: the file was read again meanwhile",
            path.display()
        ));
    }
    main.dns.prepare_config(config).map_err(|error| {
        format!(
            "reload refused, nothing changed: {}: {error:#}",
            path.display()
        )
    })
}

/// Writes the current state to `path`, readable by its owner only (it holds the private
/// keys of the certificates).
pub(crate) fn save_state(main: &MainProcess, path: &str) -> Response {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|file| {
            // An existing file keeps its mode on open: narrow it too.
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            Ok(file)
        });
    let file = match opened {
        Ok(file) => file,
        Err(error) => return failure(&format!("cannot create {path}: {error}")),
    };
    let mut writer = BufWriter::new(file);
    match super::dns::save_state(main, &mut writer) {
        Ok(left) => {
            let mut message = format!("state saved to {path}");
            if left > 0 {
                message.push_str(&format!(
                    " without the {left} clusters etcd manages (etcd holds them)"
                ));
            }
            info!("{message}");
            ok(&message)
        }
        Err(error) => failure(&format!("cannot save the state to {path}: {error}")),
    }
}

/// Makes the state equal to the one saved in `path`, but for the clusters etcd manages,
/// which stay as etcd has them (what the file holds of them is skipped, and the answer
/// says so).
pub(crate) fn load_state(main: &MainProcess, path: &str, allow_empty: bool) -> Response {
    let file = match File::open(Path::new(path)) {
        Ok(file) => file,
        Err(error) => return failure(&format!("cannot open {path}: {error}")),
    };
    let mut left_to_etcd = Default::default();
    let prepared = super::dns::read_state(BufReader::new(file)).and_then(|requests| {
        let (requests, left) = super::etcd_source::leave_managed(main, requests);
        left_to_etcd = left;
        main.dns.prepare_requests(requests)
    });
    match prepared {
        Ok(prepared) if expired_certificate(&prepared.state).is_some() => failure(&format!(
            "cannot load the state from {path}, nothing changed: {}",
            expired_certificate(&prepared.state).unwrap_or_default()
        )),
        Ok(mut prepared) => {
            let what = format!("state load from {path}");
            let mut response = converge(main, &mut prepared.state, &what, allow_empty, None);
            main.file_index.forget_state();
            if response.status == proto::ResponseStatus::Ok as i32 {
                main.dns.commit(prepared.templates);
                if let Some(note) = super::etcd_source::left_note(&left_to_etcd) {
                    response.message.push_str(&format!("; {note}"));
                }
            }
            response
        }
        Err(error) => failure(&format!(
            "cannot load the state from {path}, nothing changed: {error}"
        )),
    }
}

/// Why a certificate of `state` cannot be served now (expired), if one cannot: the
/// check the configuration file and ctl make, made on a state file too.
fn expired_certificate(state: &ConfigState) -> Option<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        });
    state.certificates().values().find_map(|stored| {
        sluice_command::certificate::check(&stored.pem, now)
            .err()
            .map(|error| error.to_string())
    })
}

/// Applies `current.diff(target)` as one transaction and summarizes it. The clusters
/// etcd manages are added to `target` as they are now, under the same lock as the
/// change, so that an etcd batch applied meanwhile is not undone. `read` is the parse
/// cache's number of the file read that `target` comes from, if it does.
fn converge(
    main: &MainProcess,
    target: &mut ConfigState,
    what: &str,
    allow_empty: bool,
    read: Option<u64>,
) -> Response {
    let _serial = main.lock_changes();
    if let Err(error) = super::etcd_source::keep_managed_clusters(main, target) {
        return failure(&format!("{what} refused, nothing changed: {error}"));
    }
    let requests = {
        let state = lock(&main.state);
        if let Some(emptied) = emptied(&state, target).filter(|_| !allow_empty) {
            return failure(&format!(
                "{what} refused, nothing changed: {emptied}; pass --allow-empty to apply it anyway"
            ));
        }
        state.diff(target)
    };
    apply_and_summarize(main, &requests, what, read)
}

/// Applies `requests` as one transaction and summarizes them; on success, records
/// that main's state is now what the file read `read` says (or no read's). The caller
/// holds [`MainProcess::lock_changes`].
fn apply_and_summarize(
    main: &MainProcess,
    requests: &[Request],
    what: &str,
    read: Option<u64>,
) -> Response {
    if let Err(error) = apply_serialized(main, requests) {
        return failure(&format!("{what} refused, nothing changed: {error}"));
    }
    let writes = lock(&main.state).writes();
    *lock(&main.converged) = read.map(|read| reload_part::Converged { read, writes });
    let mut summary = proto::ReloadSummary::default();
    for request in requests {
        let name = ConfigState::summary_of(request);
        if is_removal(request) {
            summary.removed.push(name);
        } else if is_update(request) {
            summary.changed.push(name);
        } else {
            summary.added.push(name);
        }
    }
    let message = format!(
        "{what}: {} added, {} removed, {} changed in place",
        summary.added.len(),
        summary.removed.len(),
        summary.changed.len()
    );
    info!("{message}");
    with_content(ok(&message), ContentType::Reload(summary))
}

/// Whether a reload from `current` to `next` has logging to apply: settings that changed,
/// or an access log file to reopen (every reload does, as SIGUSR1). Otherwise the workers
/// are not asked: the reload answers without one more round trip to each.
fn logging_to_apply(current: &Config, next: &Config) -> bool {
    matches!(next.access_log, AccessLogTarget::File(_))
        || current.log_level != next.log_level
        || current.access_log != next.access_log
        || current.access_log_format != next.access_log_format
}

/// What `target` would empty: every listener or every cluster gone.
fn emptied(current: &ConfigState, target: &ConfigState) -> Option<String> {
    let listeners = current.listeners().len();
    let clusters = current.clusters().len();
    if target.listeners().is_empty() && listeners > 0 {
        return Some(format!(
            "the result would have no listener (there are {listeners} now)"
        ));
    }
    if target.clusters().is_empty() && clusters > 0 {
        return Some(format!(
            "the result would have no cluster (there are {clusters} now)"
        ));
    }
    None
}

fn is_update(request: &Request) -> bool {
    matches!(
        &request.request_type,
        Some(RequestType::UpdateBackend(_))
            | Some(RequestType::UpdateHttpListener(_))
            | Some(RequestType::UpdateTcpListener(_))
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_command::config::{AccessLogFormat, LogLevel};

    #[test]
    fn unchanged_logging_to_stdout_or_nowhere_is_not_applied_again() {
        for target in [AccessLogTarget::Stdout, AccessLogTarget::Off] {
            let current = Config {
                access_log: target,
                ..Config::default_embedded()
            };
            assert!(!logging_to_apply(&current, &current.clone()));
        }
    }

    #[test]
    fn changed_logging_or_a_log_file_is_applied() {
        let current = Config {
            access_log: AccessLogTarget::Off,
            ..Config::default_embedded()
        };
        let changes = [
            Config {
                log_level: LogLevel::Debug,
                ..current.clone()
            },
            Config {
                access_log: AccessLogTarget::Stdout,
                ..current.clone()
            },
            Config {
                access_log_format: AccessLogFormat::Json,
                ..current.clone()
            },
        ];
        for next in &changes {
            assert!(logging_to_apply(&current, next), "{next:?}");
        }
        let file = Config {
            access_log: AccessLogTarget::File("/var/log/sluice/access.log".into()),
            ..Config::default_embedded()
        };
        // Reopened by every reload, as logrotate's SIGUSR1 does.
        assert!(logging_to_apply(&file, &file.clone()));
    }
}
