//! The etcd thread: a current-thread tokio runtime running the `etcd-client` crate, confined
//! to this one thread of the main process. It reads the prefix, applies it, watches from
//! the next revision and applies each batch of events; on any failure it reports the
//! source disconnected, retries with backoff and, once back, reads the prefix again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Certificate, Client, ConnectOptions, EventType, GetOptions, Identity, TlsOptions, WatchOptions,
};
use log::{info, warn};
use sluice_command::config::EtcdConfig;
use sluice_command::proto;

use super::super::{lock, MainProcess};
use super::apply::{apply, event, Batch, Origin};
use super::{cache, Connection, EtcdSource};

/// First wait after a failure; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How often the stopping flag is looked at while waiting.
const STOP_CHECK: Duration = Duration::from_millis(200);

/// Why a session with etcd ended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    /// The client said so (connection, authentication, request).
    #[error(transparent)]
    Client(#[from] etcd_client::Error),
    /// A TLS file of `[etcd]` could not be read.
    #[error("cannot read {path}: {source}")]
    TlsFile {
        path: String,
        source: std::io::Error,
    },
    /// etcd did not answer within the dial timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The watch ended: compacted past our revision, canceled or closed.
    #[error("watch lost: {0}")]
    WatchLost(String),
}

/// Starts the thread.
pub(crate) fn spawn(main: Arc<MainProcess>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("etcd".into())
        .spawn(move || runtime.block_on(run(main)))?;
    Ok(())
}

async fn run(main: Arc<MainProcess>) {
    let Some(source) = main.etcd.get() else {
        return;
    };
    let mut backoff = FIRST_BACKOFF;
    while !main.stop_requested() {
        let error = match session(&main, source).await {
            Ok(()) => return,
            Err(error) => error,
        };
        if matches!(error, SessionError::WatchLost(_)) {
            warn!("etcd {error}; reading the whole prefix again");
            continue;
        }
        if lock(&source.state).connection == Connection::Connected {
            backoff = FIRST_BACKOFF;
        }
        disconnected(&main, source, &error);
        wait(&main, backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Connects, reads, watches; returns only on failure (or `Ok` when main stops).
async fn session(main: &MainProcess, source: &EtcdSource) -> Result<(), SessionError> {
    let config = &source.config;
    let prefix = config.clusters_prefix();
    let timeout = config.dial_timeout;
    let mut client = within(
        timeout,
        Client::connect(&config.endpoints, Some(options(config)?)),
    )
    .await?;
    let read = within(
        timeout,
        client.get(prefix.as_str(), Some(GetOptions::new().with_prefix())),
    )
    .await?;
    let revision = read.header().map_or(0, |h| h.revision());
    let documents: BTreeMap<String, String> = read
        .kvs()
        .iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(kv.key()).into_owned(),
                String::from_utf8_lossy(kv.value()).into_owned(),
            )
        })
        .collect();
    connected(main, source);
    apply(main, Batch::Full(documents), revision, Origin::Etcd);
    let options = WatchOptions::new()
        .with_prefix()
        .with_start_revision(revision + 1)
        .with_progress_notify();
    let mut stream = within(timeout, client.watch(prefix.as_str(), Some(options))).await?;
    loop {
        let message = tokio::select! {
            message = stream.message() => message?,
            () = tokio::time::sleep(STOP_CHECK) => {
                if main.stop_requested() {
                    return Ok(());
                }
                continue;
            }
        };
        let Some(response) = message else {
            return Err(SessionError::WatchLost("closed by etcd".into()));
        };
        if response.compact_revision() != 0 {
            return Err(SessionError::WatchLost(format!(
                "compacted up to revision {}",
                response.compact_revision()
            )));
        }
        if response.canceled() {
            return Err(SessionError::WatchLost(format!(
                "canceled: {}",
                response.cancel_reason()
            )));
        }
        let revision = response.header().map_or(0, |h| h.revision());
        let changes: Vec<(String, Option<String>)> = response
            .events()
            .iter()
            .filter_map(|event| {
                let kv = event.kv()?;
                let key = String::from_utf8_lossy(kv.key()).into_owned();
                Some(match event.event_type() {
                    EventType::Put => (key, Some(String::from_utf8_lossy(kv.value()).into_owned())),
                    EventType::Delete => (key, None),
                })
            })
            .collect();
        if changes.is_empty() {
            let mut state = lock(&source.state);
            state.revision = state.revision.max(revision);
            continue;
        }
        apply(main, Batch::Changes(changes), revision, Origin::Etcd);
    }
}

/// The client's options from `[etcd]`.
pub(crate) fn options(config: &EtcdConfig) -> Result<ConnectOptions, SessionError> {
    let mut options = ConnectOptions::new()
        .with_connect_timeout(config.dial_timeout)
        .with_keep_alive(Duration::from_secs(2), config.dial_timeout)
        .with_keep_alive_while_idle(true);
    if let Some((user, password)) = &config.credentials {
        options = options.with_user(user.clone(), password.clone());
    }
    if config.ca.is_some() || config.client_certificate.is_some() {
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|source| SessionError::TlsFile {
                path: path.display().to_string(),
                source,
            })
        };
        let mut tls = TlsOptions::new();
        if let Some(ca) = &config.ca {
            tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
        }
        if let Some((certificate, key)) = &config.client_certificate {
            tls = tls.identity(Identity::from_pem(read(certificate)?, read(key)?));
        }
        options = options.with_tls(tls);
    }
    Ok(options)
}

/// `future`'s result, or a timeout error after `timeout`.
async fn within<T, E: Into<SessionError>>(
    timeout: Duration,
    future: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, SessionError> {
    match tokio::time::timeout(timeout, future).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(SessionError::Timeout(timeout)),
    }
}

fn connected(main: &MainProcess, source: &EtcdSource) {
    let before = std::mem::replace(&mut lock(&source.state).connection, Connection::Connected);
    match before {
        Connection::Connected => {}
        Connection::Connecting => info!("etcd connected: {}", source.config.endpoints.join(", ")),
        Connection::Disconnected(_) => {
            let message = format!(
                "etcd reachable again: {}",
                source.config.endpoints.join(", ")
            );
            info!("{message}");
            main.events
                .publish(event(proto::EventKind::SourceReconnected, message));
        }
    }
}

fn disconnected(main: &MainProcess, source: &EtcdSource, error: &SessionError) {
    let reason = error.to_string();
    let before = std::mem::replace(
        &mut lock(&source.state).connection,
        Connection::Disconnected(reason.clone()),
    );
    if matches!(before, Connection::Disconnected(_)) {
        return;
    }
    let message = format!("etcd unreachable ({reason}): serving the last state, retrying",);
    warn!("{message}");
    main.events
        .publish(event(proto::EventKind::SourceDisconnected, message));
    if before == Connection::Connecting {
        start_from_cache(main, source);
    }
}

/// At a start without etcd: the clusters of the last applied state, from the cache.
fn start_from_cache(main: &MainProcess, source: &EtcdSource) {
    let Some(path) = &source.config.cache else {
        warn!("etcd unreachable at start and no cache configured: no cluster from etcd yet");
        return;
    };
    match cache::read(path) {
        Ok(Some(cached)) => {
            info!(
                "etcd unreachable at start: starting from the cache {} (revision {}, {} keys)",
                path.display(),
                cached.revision,
                cached.documents.len()
            );
            apply(
                main,
                Batch::Full(cached.documents),
                cached.revision,
                Origin::Cache,
            );
        }
        Ok(None) => warn!(
            "etcd unreachable at start and no cache at {} yet: no cluster from etcd yet",
            path.display()
        ),
        Err(error) => warn!("etcd unreachable at start and the cache is unusable: {error}"),
    }
}

/// Sleeps `duration`, waking early when main stops.
async fn wait(main: &MainProcess, duration: Duration) {
    let mut left = duration;
    while !left.is_zero() && !main.stop_requested() {
        let step = left.min(STOP_CHECK);
        tokio::time::sleep(step).await;
        left -= step;
    }
}
