//! Answers a ctl request: one small handler per request family.

use sluice_command::proto::{
    self, query_clusters::Filter, request::RequestType, response_content::ContentType, Request,
    Response, ResponseContent, ResponseStatus,
};
use sluice_command::state::ConfigState;

use super::{certificates, ctl_changes, etcd_source, lock, reload, MainProcess};

/// The answer to `request` (event subscriptions are served by the command server).
pub(crate) fn dispatch(main: &MainProcess, request: &Request) -> Response {
    let Some(request_type) = &request.request_type else {
        return failure("empty request");
    };
    if let Some(pid) = *lock(&main.handed_over_to) {
        return failure(&format!(
            "this main process handed over to process {pid} and is exiting: connect again"
        ));
    }
    if let Some(answer) = certificates::dispatch(main, request) {
        return answer;
    }
    match request_type {
        RequestType::QueryClusters(query) => clusters(main, query),
        RequestType::QueryFrontends(_) => with_content(
            ok(""),
            ContentType::Frontends(lock(&main.state).frontend_list()),
        ),
        RequestType::QueryListeners(_) => with_content(
            ok(""),
            ContentType::Listeners(lock(&main.state).listener_list()),
        ),
        RequestType::QueryStatus(_) => {
            let mut statuses = main.workers.statuses();
            statuses.main_pid = Some(std::process::id());
            statuses.generation = Some(main.generation);
            statuses.source = main.etcd.get().map(|source| source.status());
            with_content(ok(""), ContentType::Workers(statuses))
        }
        RequestType::QueryMetrics(query) => metrics(main, query),
        RequestType::SaveState(save) => reload::save_state(main, &save.path),
        RequestType::LoadState(load) => {
            reload::load_state(main, &load.path, load.allow_empty.unwrap_or(false))
        }
        RequestType::ReloadConfiguration(reload) => reload::reload(
            main,
            reload.path.as_deref(),
            reload.allow_empty.unwrap_or(false),
        ),
        RequestType::SoftStop(_) => ok("stopping: draining sessions"),
        RequestType::HardStop(_) => ok("stopping now"),
        RequestType::SubscribeEvents(_) => {
            failure("event subscriptions need a connection of their own")
        }
        RequestType::UpgradeMain(upgrade) => super::upgrade::upgrade(main, upgrade),
        _ if ConfigState::is_state_change(request) || ctl_changes::is_partial_change(request) => {
            match etcd_source::ctl_refusal(main, request) {
                Some(refusal) => failure(&refusal),
                None => super::dns::intercept_ctl(main, request)
                    .unwrap_or_else(|| ctl_changes::apply(main, request)),
            }
        }
        _ => failure("unsupported request"),
    }
}

fn clusters(main: &MainProcess, query: &proto::QueryClusters) -> Response {
    let list = lock(&main.state).cluster_list(query);
    if let Some(Filter::ClusterId(id)) = &query.filter {
        if list.clusters.is_empty() {
            return failure(&format!("unknown cluster `{id}`"));
        }
    }
    with_content(ok(""), ContentType::Clusters(list))
}

/// Every worker's metrics, merged; a warning names the workers that did not answer.
fn metrics(main: &MainProcess, query: &proto::QueryMetrics) -> Response {
    if let Err(unknown) = check_metrics_filter(main, query) {
        return failure(&unknown);
    }
    match super::metrics::collect(main, query) {
        Ok(collected) => with_content(
            ok(&collected.warning().unwrap_or_default()),
            ContentType::Metrics(collected.metrics),
        ),
        Err(reason) => failure(&reason),
    }
}

/// Refuses a metrics filter that names a cluster or backend the state does not have.
fn check_metrics_filter(main: &MainProcess, query: &proto::QueryMetrics) -> Result<(), String> {
    if query.cluster_id.is_none() && query.backend_id.is_none() {
        return Ok(());
    }
    let filter = match &query.cluster_id {
        Some(id) => Filter::ClusterId(id.clone()),
        None => Filter::All(true),
    };
    let list = lock(&main.state).cluster_list(&proto::QueryClusters {
        filter: Some(filter),
        ..Default::default()
    });
    if let (Some(id), true) = (&query.cluster_id, list.clusters.is_empty()) {
        return Err(format!("unknown cluster `{id}`"));
    }
    if let Some(backend) = &query.backend_id {
        let known = list
            .clusters
            .iter()
            .flat_map(|info| &info.backends)
            .any(|b| &b.backend_id == backend);
        if !known {
            return Err(match &query.cluster_id {
                Some(cluster) => format!("unknown backend `{backend}` in cluster `{cluster}`"),
                None => format!("unknown backend `{backend}`"),
            });
        }
    }
    Ok(())
}

/// "`context`: worker 0: reason; worker 1: reason".
pub(crate) fn per_worker(context: &str, failures: &[(u32, String)]) -> String {
    let details: Vec<String> = failures
        .iter()
        .map(|(id, reason)| format!("worker {id}: {reason}"))
        .collect();
    format!("{context}: {}", details.join("; "))
}

/// A success answer.
pub(crate) fn ok(message: &str) -> Response {
    Response {
        status: ResponseStatus::Ok as i32,
        message: message.to_owned(),
        content: None,
    }
}

/// A failure answer.
pub(crate) fn failure(message: &str) -> Response {
    Response {
        status: ResponseStatus::Failure as i32,
        message: message.to_owned(),
        content: None,
    }
}

/// `response` carrying `content`.
pub(crate) fn with_content(mut response: Response, content: ContentType) -> Response {
    response.content = Some(ResponseContent {
        content_type: Some(content),
    });
    response
}
