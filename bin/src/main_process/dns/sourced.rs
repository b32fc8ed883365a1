//! Backends given by host name in the clusters etcd brings: resolved like the file's
//! (one backend per address, refreshed, a name that stops resolving keeps its last
//! addresses), and kept apart from the file's so that a reload or a state load leaves
//! them to etcd. The etcd source takes a key's templates out of its cluster, has their
//! names looked up, expands the cluster with them, and hands them over here once its
//! batch is applied; a deleted key takes its names out of the refreshes.

use sluice_command::proto;
use sluice_command::state::ConfigState;

use super::super::lock;
use super::{add_template, is_named, reconcile, Dns, NameTable, Template, Templates};

/// Takes the backends given by host name out of `cluster`, checked, as templates.
pub(crate) fn take_named(cluster: &mut proto::ClusterInformation) -> Result<Vec<Template>, String> {
    let (named, fixed): (Vec<_>, Vec<_>) = std::mem::take(&mut cluster.backends)
        .into_iter()
        .partition(is_named);
    cluster.backends = fixed;
    let mut templates = Templates::new();
    for backend in &named {
        add_template(&mut templates, backend)?;
    }
    Ok(templates.into_values().flatten().collect())
}

/// Adds to `state`, which holds cluster `cluster_id`, one backend per address of the
/// names of `templates`, as `names` has them.
pub(crate) fn expand_cluster(
    state: &mut ConfigState,
    cluster_id: &str,
    templates: &[Template],
    names: &NameTable,
) -> Result<(), String> {
    for request in reconcile(state, cluster_id, templates, names) {
        state
            .apply(&request)
            .map_err(|error| format!("{}: {error}", ConfigState::summary_of(&request)))?;
    }
    Ok(())
}

/// Why `template` cannot be taken now, if it cannot: its name never resolved (as
/// `names` has it) and its backend may not resolve later.
pub(crate) fn unresolved(names: &NameTable, template: &Template) -> Option<String> {
    let entry = names.get(&template.host);
    let never = entry.is_none_or(|entry| entry.addresses.is_none());
    if !never || template.backend.resolve_later == Some(true) {
        return None;
    }
    let error = entry
        .and_then(|entry| entry.error.clone())
        .unwrap_or_else(|| "not looked up".to_owned());
    Some(format!(
        "cannot resolve {}: {error} (set resolve_later = true to accept it before its \
         name resolves)",
        template.host
    ))
}

impl Dns {
    /// What every name resolves to now.
    pub(crate) fn names(&self) -> NameTable {
        lock(&self.registry).names.clone()
    }

    /// Makes each of `clusters`' templates the backends given by host name of that
    /// cluster of etcd's (none when its key is gone); names no backend uses any more
    /// stop being looked up.
    pub(crate) fn set_sourced(&self, clusters: impl IntoIterator<Item = (String, Vec<Template>)>) {
        let mut registry = lock(&self.registry);
        for (cluster_id, templates) in clusters {
            if templates.is_empty() {
                registry.sourced.remove(&cluster_id);
            } else {
                registry.sourced.insert(cluster_id, templates);
            }
        }
        registry.sync_names();
        self.changed.notify_all();
    }

    /// The backends given by host name of etcd's cluster `cluster_id`.
    #[cfg(test)]
    pub(crate) fn sourced(&self, cluster_id: &str) -> Vec<Template> {
        lock(&self.registry)
            .sourced
            .get(cluster_id)
            .cloned()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use sluice_command::proto::{request::RequestType, Request};

    use super::super::resolver::Answer;
    use super::*;

    fn backend(id: &str, address: &str) -> proto::Backend {
        proto::Backend {
            cluster_id: "api".into(),
            backend_id: id.into(),
            address: address.into(),
            sticky_id: Some(id.into()),
            weight: 100,
            ..Default::default()
        }
    }

    #[test]
    fn named_backends_leave_the_cluster_as_templates_and_come_back_per_address() {
        let mut cluster = proto::ClusterInformation {
            cluster: proto::Cluster {
                cluster_id: "api".into(),
                ..Default::default()
            },
            backends: vec![
                backend("fixed", "127.0.0.1:80"),
                backend("web", "API.test:8080"),
            ],
            ..Default::default()
        };
        let templates = take_named(&mut cluster).expect("valid");
        assert_eq!(cluster.backends.len(), 1);
        assert_eq!(templates.len(), 1);
        assert_eq!(templates[0].host, "api.test");

        let mut state = ConfigState::new();
        let add = Request {
            request_type: Some(RequestType::AddCluster(cluster.cluster.clone())),
        };
        state.apply(&add).expect("add the cluster");
        let mut names = NameTable::default();
        let now = Instant::now();
        let answer = Answer {
            addresses: vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()],
            valid_until: now + Duration::from_secs(60),
        };
        names.record("api.test", Ok(answer), now, Duration::from_secs(5));
        expand_cluster(&mut state, "api", &templates, &names).expect("expands");
        let ids: Vec<_> = state
            .backends("api")
            .map(|b| b.backend_id.clone())
            .collect();
        assert_eq!(ids, ["web@10.0.0.1:8080", "web@10.0.0.2:8080"]);
    }

    #[test]
    fn a_name_that_never_resolved_is_refused_unless_it_may_resolve_later() {
        let mut names = NameTable::default();
        let mut cluster = proto::ClusterInformation {
            backends: vec![backend("web", "api.test:80")],
            ..Default::default()
        };
        let templates = take_named(&mut cluster).expect("valid");
        let why = unresolved(&names, &templates[0]).expect("never looked up");
        assert!(why.starts_with("cannot resolve api.test"), "{why}");
        let now = Instant::now();
        names.record(
            "api.test",
            Err("NXDOMAIN".into()),
            now,
            Duration::from_secs(1),
        );
        let why = unresolved(&names, &templates[0]).expect("never resolved");
        assert!(
            why.starts_with("cannot resolve api.test: NXDOMAIN"),
            "{why}"
        );
        let mut later = backend("web", "api.test:80");
        later.resolve_later = Some(true);
        let mut cluster = proto::ClusterInformation {
            backends: vec![later],
            ..Default::default()
        };
        let templates = take_named(&mut cluster).expect("valid");
        assert_eq!(unresolved(&names, &templates[0]), None);
    }

    #[test]
    fn a_cluster_gone_takes_its_names_out_of_the_refreshes() {
        let dns = Dns::default();
        let mut cluster = proto::ClusterInformation {
            backends: vec![backend("web", "api.test:80")],
            ..Default::default()
        };
        let templates = take_named(&mut cluster).expect("valid");
        {
            let mut registry = lock(&dns.registry);
            let now = Instant::now();
            registry.names.record(
                "api.test",
                Err("NXDOMAIN".into()),
                now,
                Duration::from_secs(1),
            );
        }
        dns.set_sourced([("api".to_owned(), templates.clone())]);
        // A commit of the file's templates leaves etcd's.
        dns.commit(Templates::new());
        assert_eq!(dns.sourced("api"), templates);
        assert!(dns.names().get("api.test").is_some());
        dns.set_sourced([("api".to_owned(), Vec::new())]);
        assert!(dns.sourced("api").is_empty());
        assert!(dns.names().get("api.test").is_none());
    }
}
