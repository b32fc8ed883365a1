//! From backends given by host name to the backends the workers know: one per
//! address, and the requests that bring a cluster's resolved backends in line
//! with what its names resolve to now, touching only what differs.
//!
//! A backend `web` at `api.internal:8080` that resolves to 10.0.0.5 and 10.0.0.6
//! becomes `web@10.0.0.5:8080` and `web@10.0.0.6:8080` (sticky ids likewise), with
//! its weight, backup flag and state, and `resolved_from = "api.internal:8080"`.
//! An address another backend of the cluster already has is left to that backend.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use sluice_command::proto::{self, request::RequestType, Request};
use sluice_command::state::ConfigState;

use super::names::NameTable;

/// A backend given by host name, as configured.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template {
    /// The backend as written, normalized: its address is `NAME:PORT`.
    pub(crate) backend: proto::Backend,
    /// The host name, lower case.
    pub(crate) host: String,
    /// The port every resolved backend uses.
    pub(crate) port: u16,
}

impl Template {
    /// The backend it becomes at `ip`.
    pub(crate) fn resolved(&self, ip: IpAddr) -> proto::Backend {
        let address = SocketAddr::new(ip, self.port).to_string();
        let sticky = self
            .backend
            .sticky_id
            .as_deref()
            .unwrap_or(&self.backend.backend_id);
        proto::Backend {
            backend_id: format!("{}@{address}", self.backend.backend_id),
            sticky_id: Some(format!("{sticky}@{address}")),
            address,
            resolve_later: None,
            resolved_from: Some(self.backend.address.clone()),
            ..self.backend.clone()
        }
    }
}

/// The requests that make the resolved backends of `cluster_id` in `state` those of
/// `templates` at the addresses `names` holds: removals first, then additions and
/// in-place updates. Backends not resolved from a name are left alone, and keep
/// their address.
pub(crate) fn reconcile(
    state: &ConfigState,
    cluster_id: &str,
    templates: &[Template],
    names: &NameTable,
) -> Vec<Request> {
    let mut current = BTreeMap::new();
    let mut taken = BTreeSet::new();
    for backend in state.backends(cluster_id) {
        if backend.resolved_from.is_some() {
            current.insert(backend.address.clone(), backend);
        } else {
            taken.insert(backend.address.clone());
        }
    }
    let mut wanted = BTreeMap::new();
    for template in templates {
        for ip in names.addresses(&template.host) {
            let backend = template.resolved(*ip);
            if !taken.contains(&backend.address) {
                wanted.entry(backend.address.clone()).or_insert(backend);
            }
        }
    }
    let same_id = |a: &proto::Backend, b: &proto::Backend| a.backend_id == b.backend_id;
    let mut requests: Vec<Request> = current
        .iter()
        .filter(|(address, backend)| !wanted.get(*address).is_some_and(|w| same_id(w, backend)))
        .map(|(_, backend)| remove(backend))
        .collect();
    for (address, backend) in wanted {
        match current.get(&address) {
            Some(now) if same_id(now, &backend) && **now == backend => {}
            Some(now) if same_id(now, &backend) => {
                requests.push(request(RequestType::UpdateBackend(backend)))
            }
            _ => requests.push(request(RequestType::AddBackend(proto::AddBackend {
                backend,
            }))),
        }
    }
    requests
}

fn remove(backend: &proto::Backend) -> Request {
    request(RequestType::RemoveBackend(proto::RemoveBackend {
        cluster_id: backend.cluster_id.clone(),
        address: backend.address.clone(),
        backend_id: Some(backend.backend_id.clone()),
        when_drained: None,
    }))
}

fn request(request_type: RequestType) -> Request {
    Request {
        request_type: Some(request_type),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::resolver::Answer;
    use super::*;

    fn template(id: &str, name: &str, port: u16) -> Template {
        Template {
            backend: proto::Backend {
                cluster_id: "api".into(),
                backend_id: id.into(),
                address: format!("{name}:{port}"),
                weight: 100,
                ..Default::default()
            },
            host: name.into(),
            port,
        }
    }

    fn state() -> ConfigState {
        let mut state = ConfigState::new();
        let cluster = proto::Cluster {
            cluster_id: "api".into(),
            ..Default::default()
        };
        state
            .apply(&request(RequestType::AddCluster(cluster)))
            .unwrap();
        state
    }

    fn resolve(names: &mut NameTable, name: &str, ips: &[&str]) {
        let now = Instant::now();
        let answer = Answer {
            addresses: ips.iter().map(|ip| ip.parse().unwrap()).collect(),
            valid_until: now + Duration::from_secs(60),
        };
        names.record(name, Ok(answer), now, Duration::from_secs(5));
    }

    fn apply(state: &mut ConfigState, requests: &[Request]) {
        for request in requests {
            state.apply(request).unwrap();
        }
    }

    fn kinds(requests: &[Request]) -> Vec<String> {
        requests
            .iter()
            .map(ConfigState::summary_of)
            .collect::<Vec<_>>()
    }

    #[test]
    fn one_backend_per_address_then_only_what_changed() {
        let mut state = state();
        let mut names = NameTable::default();
        let templates = [template("web", "api.test", 8080)];
        resolve(&mut names, "api.test", &["10.0.0.1", "10.0.0.2"]);
        let first = reconcile(&state, "api", &templates, &names);
        assert_eq!(first.len(), 2, "{:?}", kinds(&first));
        apply(&mut state, &first);
        let ids: Vec<_> = state
            .backends("api")
            .map(|b| b.backend_id.clone())
            .collect();
        assert_eq!(ids, ["web@10.0.0.1:8080", "web@10.0.0.2:8080"]);
        assert!(reconcile(&state, "api", &templates, &names).is_empty());

        resolve(&mut names, "api.test", &["10.0.0.2", "10.0.0.3"]);
        let second = reconcile(&state, "api", &templates, &names);
        assert_eq!(second.len(), 2, "{:?}", kinds(&second));
        assert!(matches!(
            &second[0].request_type,
            Some(RequestType::RemoveBackend(r)) if r.address == "10.0.0.1:8080"
        ));
        assert!(matches!(
            &second[1].request_type,
            Some(RequestType::AddBackend(a)) if a.backend.address == "10.0.0.3:8080"
        ));
    }

    #[test]
    fn settings_of_the_named_backend_apply_to_each_address() {
        let mut state = state();
        let mut names = NameTable::default();
        let mut named = template("web", "api.test", 80);
        named.backend.weight = 7;
        named.backend.backup = true;
        named.backend.sticky_id = Some("s".into());
        named.backend.state = Some(proto::BackendState::Drain as i32);
        resolve(&mut names, "api.test", &["10.0.0.1"]);
        let requests = reconcile(&state, "api", &[named.clone()], &names);
        apply(&mut state, &requests);
        let backend = state.backends("api").next().unwrap().clone();
        assert_eq!(backend.weight, 7);
        assert!(backend.backup);
        assert_eq!(backend.sticky_id.as_deref(), Some("s@10.0.0.1:80"));
        assert_eq!(backend.state, Some(proto::BackendState::Drain as i32));
        assert_eq!(backend.resolved_from.as_deref(), Some("api.test:80"));

        named.backend.weight = 9;
        let update = reconcile(&state, "api", &[named], &names);
        assert!(matches!(
            &update[..],
            [Request { request_type: Some(RequestType::UpdateBackend(b)) }] if b.weight == 9
        ));
    }

    #[test]
    fn an_address_another_backend_has_is_left_to_it() {
        let mut state = state();
        let fixed = proto::Backend {
            cluster_id: "api".into(),
            backend_id: "fixed".into(),
            address: "10.0.0.1:80".into(),
            weight: 100,
            ..Default::default()
        };
        apply(
            &mut state,
            &[request(RequestType::AddBackend(proto::AddBackend {
                backend: fixed,
            }))],
        );
        let mut names = NameTable::default();
        resolve(&mut names, "api.test", &["10.0.0.1", "10.0.0.2"]);
        let requests = reconcile(&state, "api", &[template("web", "api.test", 80)], &names);
        assert_eq!(kinds(&requests).len(), 1);
        apply(&mut state, &requests);
        assert_eq!(state.backends("api").count(), 2);
    }

    #[test]
    fn a_template_gone_takes_its_backends_with_it() {
        let mut state = state();
        let mut names = NameTable::default();
        resolve(&mut names, "api.test", &["10.0.0.1", "10.0.0.2"]);
        let requests = reconcile(&state, "api", &[template("web", "api.test", 80)], &names);
        apply(&mut state, &requests);
        let requests = reconcile(&state, "api", &[], &names);
        assert_eq!(requests.len(), 2);
        apply(&mut state, &requests);
        assert_eq!(state.backends("api").count(), 0);
    }
}
