//! Answers a ctl request: one small handler per request family.

use sluice_command::proto::{
    self, query_clusters::Filter, request::RequestType, response_content::ContentType, Request,
    Response, ResponseContent, ResponseStatus,
};
use sluice_command::state::ConfigState;

use super::{changes, lock, reload, MainProcess, WORKER_ANSWER_TIMEOUT};

/// The answer to `request` (event subscriptions are served by the command server).
pub(crate) fn dispatch(main: &MainProcess, request: &Request) -> Response {
    let Some(request_type) = &request.request_type else {
        return failure("empty request");
    };
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
            with_content(ok(""), ContentType::Workers(main.workers.statuses()))
        }
        RequestType::QueryMetrics(_) => metrics(main, request),
        RequestType::SaveState(save) => reload::save_state(main, &save.path),
        RequestType::LoadState(load) => reload::load_state(main, &load.path),
        RequestType::ReloadConfiguration(reload) => reload::reload(main, reload.path.as_deref()),
        RequestType::SoftStop(_) => ok("stopping: draining sessions"),
        RequestType::HardStop(_) => ok("stopping now"),
        RequestType::SubscribeEvents(_) => {
            failure("event subscriptions need a connection of their own")
        }
        RequestType::AddHttpsListener(_)
        | RequestType::AddCertificate(_)
        | RequestType::RemoveCertificate(_)
        | RequestType::ReplaceCertificate(_)
        | RequestType::UpgradeMain(_) => failure("not supported yet"),
        _ if ConfigState::is_state_change(request) => changes::apply(main, request),
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

/// Workers count the metrics; an answer "not handled" from all of them means
/// this build's workers do not count them yet.
fn metrics(main: &MainProcess, request: &Request) -> Response {
    let outcomes = main.workers.broadcast(request, WORKER_ANSWER_TIMEOUT);
    let failures: Vec<(u32, String)> = outcomes
        .iter()
        .filter_map(|o| o.failure().map(|reason| (o.worker_id, reason)))
        .collect();
    if !failures.is_empty()
        && failures.len() == outcomes.len()
        && failures
            .iter()
            .all(|(_, reason)| reason.to_lowercase().contains("not handled"))
    {
        return ok("metrics are not available yet: the workers do not count them");
    }
    if !failures.is_empty() {
        return failure(&per_worker("cannot collect metrics", &failures));
    }
    let workers: Vec<proto::WorkerMetrics> = outcomes
        .into_iter()
        .filter_map(|o| match o.result.ok()?.content?.content_type? {
            ContentType::WorkerMetrics(metrics) => Some(metrics),
            ContentType::Metrics(aggregated) => aggregated.workers.into_iter().next(),
            _ => None,
        })
        .collect();
    let total = sum_proxy_metrics(&workers);
    with_content(
        ok(""),
        ContentType::Metrics(proto::AggregatedMetrics {
            workers,
            total: Some(total),
        }),
    )
}

/// The sum over workers of the proxy-wide values (per-cluster sums are left to readers).
fn sum_proxy_metrics(workers: &[proto::WorkerMetrics]) -> proto::WorkerMetrics {
    let mut total: Vec<proto::MetricValue> = Vec::new();
    for value in workers.iter().flat_map(|w| &w.proxy) {
        match total.iter_mut().find(|t| t.name == value.name) {
            Some(sum) => sum.value = sum.value.saturating_add(value.value),
            None => total.push(value.clone()),
        }
    }
    proto::WorkerMetrics {
        worker_id: u32::MAX,
        proxy: total,
        clusters: Vec::new(),
    }
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
