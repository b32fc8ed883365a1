//! Gathering the metrics of every worker into one answer, for `ctl metrics` and for the
//! `/metrics` and `/status` endpoints.

use log::warn;
use sluice_command::metrics::merge;
use sluice_command::proto::{self, request::RequestType, response_content::ContentType, Request};

use super::dispatch::per_worker;
use super::{MainProcess, WORKER_ANSWER_TIMEOUT};

/// What the workers counted, merged.
#[derive(Debug)]
pub(crate) struct Collected {
    /// Every worker's snapshot and their total.
    pub(crate) metrics: proto::AggregatedMetrics,
    /// Workers that did not answer, and why (their counts are missing from the total).
    pub(crate) missing: Vec<(u32, String)>,
}

impl Collected {
    /// A warning naming the workers that are missing, if any.
    pub(crate) fn warning(&self) -> Option<String> {
        (!self.missing.is_empty())
            .then(|| per_worker("metrics of some workers are missing", &self.missing))
    }
}

/// Asks every worker for its metrics (narrowed by `query`) and merges the answers; fails
/// only when no worker answered.
pub(crate) fn collect(
    main: &MainProcess,
    query: &proto::QueryMetrics,
) -> Result<Collected, String> {
    let request = Request {
        request_type: Some(RequestType::QueryMetrics(query.clone())),
    };
    let outcomes = main.workers.broadcast(&request, WORKER_ANSWER_TIMEOUT);
    let mut missing = Vec::new();
    let mut workers = Vec::new();
    for outcome in outcomes {
        if let Some(reason) = outcome.failure() {
            missing.push((outcome.worker_id, reason));
            continue;
        }
        let content = outcome
            .result
            .ok()
            .and_then(|response| response.content?.content_type);
        match content {
            Some(ContentType::WorkerMetrics(metrics)) => workers.push(metrics),
            _ => missing.push((outcome.worker_id, "answered without metrics".to_owned())),
        }
    }
    if workers.is_empty() {
        return Err(per_worker("cannot collect metrics", &missing));
    }
    let collected = Collected {
        metrics: merge(workers),
        missing,
    };
    if let Some(warning) = collected.warning() {
        warn!("{warning}");
    }
    Ok(collected)
}
