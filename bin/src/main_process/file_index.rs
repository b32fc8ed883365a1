//! What the configuration file says, in brief: enough to tell an operator that
//! a change made with `sluice ctl` is one the next reload of the file will undo.
//!
//! The index keeps, for each item the file describes (listener, cluster, its
//! health check, backend, frontend), its name and a hash of its settings: a few
//! dozen bytes per item, so that it costs little at 10 000 clusters.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use log::warn;

use prost::Message;
use sluice_command::proto::{self, request::RequestType, Request};
use sluice_command::state::ConfigState;

use super::lock;

/// The items of the file `reload` reads, by name, with a hash of their settings.
#[derive(Debug, Clone)]
pub(crate) struct FileIndex {
    file: PathBuf,
    items: HashMap<String, u64>,
}

/// The index of the file `reload` reads by default, or the thread still
/// building it: a reload or a start answers without waiting for it, and the
/// first ctl change after them waits for it instead.
#[derive(Debug, Default)]
pub(crate) struct IndexSlot(Mutex<SlotState>);

#[derive(Debug, Default)]
struct SlotState {
    /// The index of the start file, as its last reload read it: what ctl
    /// changes are compared with.
    of_file: Slot,
    /// What describes main's state as the last reload left it, for the next
    /// reload that changes only a part of it to patch.
    of_state: OfState,
}

#[derive(Debug, Default)]
enum Slot {
    #[default]
    Empty,
    Ready(Arc<FileIndex>),
    Building(JoinHandle<FileIndex>),
}

/// Which index describes main's state.
#[derive(Debug, Default)]
enum OfState {
    /// None: a state load came last, or no index was ever built.
    #[default]
    Unknown,
    /// The start file's: its reload came last.
    File,
    /// One of its own, after a reload of another file.
    Own(Slot),
}

impl IndexSlot {
    /// Starts building the index of `file`, the start file, whose state's requests
    /// ([`ConfigState::generate_requests`]) are `requests`, in a thread of its own, which
    /// also drops them when done.
    pub(crate) fn build(&self, file: PathBuf, requests: Vec<Request>) {
        let built = spawn_index(move || FileIndex::of(&file, requests));
        let mut slot = lock(&self.0);
        slot.of_file = built;
        slot.of_state = OfState::File;
    }

    /// After a reload that compared the whole state: the index of `state`, the state
    /// it left, is built again in a thread of its own, as the start file's when `file`
    /// is the start file (`of_start_file`).
    pub(crate) fn build_from_state(&self, file: PathBuf, of_start_file: bool, state: ConfigState) {
        let built = spawn_index(move || FileIndex::of(&file, state.generate_requests()));
        let mut slot = lock(&self.0);
        if of_start_file {
            slot.of_file = built;
            slot.of_state = OfState::File;
        } else {
            slot.of_state = OfState::Own(built);
        }
    }

    /// After a reload of `file` that replaced the part `replaced` of the state by
    /// `new_part`: the index of the state is patched, in a thread of its own, when
    /// there is one; otherwise, for the start file, it is built again from a copy of
    /// `state`.
    pub(crate) fn patch(
        &self,
        file: PathBuf,
        of_start_file: bool,
        replaced: ConfigState,
        new_part: ConfigState,
        state: &Mutex<ConfigState>,
    ) {
        {
            let mut slot = lock(&self.0);
            let before = match std::mem::take(&mut slot.of_state) {
                OfState::Unknown => Slot::Empty,
                OfState::Own(own) => own,
                // The start file's index stays for ctl changes until the state is its
                // again; a copy of it is patched meanwhile.
                OfState::File if !of_start_file => match &slot.of_file {
                    Slot::Ready(index) => Slot::Ready(Arc::clone(index)),
                    Slot::Building(_) => match slot.ready() {
                        Some(index) => Slot::Ready(Arc::clone(index)),
                        None => Slot::Empty,
                    },
                    Slot::Empty => Slot::Empty,
                },
                OfState::File => std::mem::take(&mut slot.of_file),
            };
            if !matches!(before, Slot::Empty) {
                // The start file's index it replaces is dropped there too.
                let replaced_index = if of_start_file {
                    std::mem::take(&mut slot.of_file)
                } else {
                    Slot::Empty
                };
                let patched = spawn_index(move || {
                    drop(replaced_index);
                    let mut index = match before {
                        Slot::Ready(index) => Arc::unwrap_or_clone(index),
                        Slot::Building(handle) => match handle.join() {
                            Ok(index) => index,
                            Err(panic) => std::panic::resume_unwind(panic),
                        },
                        Slot::Empty => unreachable!("an empty slot is never patched"),
                    };
                    for (name, _) in items(replaced.generate_requests()) {
                        index.items.remove(&name);
                    }
                    index.items.extend(items(new_part.generate_requests()));
                    index.file = file;
                    index
                });
                if of_start_file {
                    slot.of_file = patched;
                    slot.of_state = OfState::File;
                } else {
                    slot.of_state = OfState::Own(patched);
                }
                return;
            }
        }
        if of_start_file {
            let copy = lock(state).clone();
            self.build_from_state(file, true, copy);
        }
    }

    /// Says that no index describes the state any more (a state load).
    pub(crate) fn forget_state(&self) {
        lock(&self.0).of_state = OfState::Unknown;
    }

    /// What [`FileIndex::announce`] says about `request`, once the index is built.
    pub(crate) fn announce(&self, request: &Request) -> Option<String> {
        lock(&self.0).ready()?.announce(request)
    }
}

/// Runs `index` on a thread of its own.
fn spawn_index(index: impl FnOnce() -> FileIndex + Send + 'static) -> Slot {
    let built = std::thread::Builder::new()
        .name("file-index".to_owned())
        .spawn(index);
    match built {
        Ok(handle) => Slot::Building(handle),
        Err(error) => {
            warn!("cannot start the thread indexing the config file: {error}");
            Slot::Empty
        }
    }
}

impl SlotState {
    /// The start file's index, once built (waiting for the thread building it).
    fn ready(&mut self) -> Option<&Arc<FileIndex>> {
        if let Slot::Building(_) = &self.of_file {
            let Slot::Building(handle) = std::mem::take(&mut self.of_file) else {
                return None;
            };
            match handle.join() {
                Ok(index) => self.of_file = Slot::Ready(Arc::new(index)),
                Err(_) => warn!("the thread indexing the config file failed"),
            }
        }
        match &self.of_file {
            Slot::Ready(index) => Some(index),
            _ => None,
        }
    }
}

/// How a ctl change stands against the file.
#[derive(Debug, PartialEq, Eq)]
enum Standing {
    /// The file has the same: a reload keeps it.
    Agrees,
    /// The file does not have what was added or changed: a reload removes it.
    Missing,
    /// The file has it with other settings: a reload sets them back.
    Differs,
    /// The file still has what was removed: a reload adds it back.
    StillThere,
}

impl FileIndex {
    /// The index of `file`, whose state is `state`.
    pub(crate) fn of(file: &Path, requests: Vec<Request>) -> FileIndex {
        FileIndex {
            file: file.to_path_buf(),
            items: items(requests).collect(),
        }
    }

    /// What to tell the operator after `request` was applied by ctl, when the next
    /// reload of the file will undo it: `not in sluice.toml: a reload will remove it`.
    pub(crate) fn announce(&self, request: &Request) -> Option<String> {
        let file = self.file.file_name().map_or_else(
            || self.file.display().to_string(),
            |name| name.to_string_lossy().into_owned(),
        );
        let text = match self.standing(request)? {
            Standing::Agrees => return None,
            Standing::Missing => format!("not in {file}: a reload will remove it"),
            Standing::Differs => format!("{file} says otherwise: a reload will set it back"),
            Standing::StillThere => format!("still in {file}: a reload will add it back"),
        };
        Some(text)
    }

    fn standing(&self, request: &Request) -> Option<Standing> {
        use RequestType as R;
        let request_type = request.request_type.as_ref()?;
        let added = |name: String, settings: u64| match self.items.get(&name) {
            None => Standing::Missing,
            Some(&known) if known == settings => Standing::Agrees,
            Some(_) => Standing::Differs,
        };
        let removed = |name: String| {
            if self.items.contains_key(&name) {
                Standing::StillThere
            } else {
                Standing::Agrees
            }
        };
        Some(match request_type {
            R::SetHealthCheck(set) => {
                let name = health_check_name(&set.cluster_id);
                match &set.config {
                    Some(check) => added(name, hash(check)),
                    None => removed(name),
                }
            }
            R::RemoveCluster(_)
            | R::RemoveBackend(_)
            | R::RemoveListener(_)
            | R::RemoveHttpFrontend(_)
            | R::RemoveTcpFrontend(_) => removed(ConfigState::summary_of(request)),
            _ => {
                let (name, settings) = item_of(request)?;
                added(name, settings)
            }
        })
    }
}

/// The name and settings hash of each item of `state`.
/// The items that `requests`, the requests of a state, describe.
fn items(requests: Vec<Request>) -> impl Iterator<Item = (String, u64)> {
    requests.into_iter().flat_map(|request| {
        let check = match &request.request_type {
            Some(RequestType::AddCluster(cluster)) => cluster
                .health_check
                .as_ref()
                .map(|check| (health_check_name(&cluster.cluster_id), hash(check))),
            _ => None,
        };
        item_of(&request).into_iter().chain(check)
    })
}

/// The name and settings hash of what an add or update request describes.
fn item_of(request: &Request) -> Option<(String, u64)> {
    use RequestType as R;
    let settings = match request.request_type.as_ref()? {
        R::AddCluster(cluster) => hash(&proto::Cluster {
            health_check: None,
            ..cluster.clone()
        }),
        R::AddBackend(add) => hash(&add.backend),
        R::UpdateBackend(backend) => hash(backend),
        R::AddHttpListener(listener) | R::UpdateHttpListener(listener) => hash(listener),
        R::AddTcpListener(listener) | R::UpdateTcpListener(listener) => hash(listener),
        // A frontend's name is all of it.
        R::AddHttpFrontend(_) | R::AddTcpFrontend(_) => 0,
        _ => return None,
    };
    Some((ConfigState::summary_of(request), settings))
}

fn health_check_name(cluster_id: &str) -> String {
    format!("health check of cluster {cluster_id}")
}

/// A hash of a message's encoding.
fn hash(message: &impl Message) -> u64 {
    let mut hasher = DefaultHasher::new();
    message.encode_to_vec().hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_command::config::Config;

    const FILE: &str = r#"
[[listeners]]
protocol = "http"
address = "127.0.0.1:8080"

[clusters.api]
protocol = "http"
frontends = [ { address = "127.0.0.1:8080", hostname = "api.test", path = "/" } ]
backends = [ { address = "127.0.0.1:9001", weight = 10 } ]
"#;

    fn file_state() -> ConfigState {
        let config = Config::parse(FILE, "sluice.toml", Path::new("/")).expect("valid config");
        let mut state = ConfigState::default();
        for request in config.to_requests() {
            state.apply(&request).expect("applies");
        }
        state
    }

    fn index() -> FileIndex {
        FileIndex::of(
            Path::new("/etc/sluice/sluice.toml"),
            file_state().generate_requests(),
        )
    }

    /// The file's one backend, as its state has it.
    fn file_backend() -> proto::Backend {
        let list = file_state().cluster_list(&proto::QueryClusters {
            filter: Some(proto::query_clusters::Filter::All(true)),
            ..Default::default()
        });
        list.clusters[0].backends[0].clone()
    }

    fn backend(address: &str, weight: u32) -> proto::Backend {
        proto::Backend {
            cluster_id: "api".to_owned(),
            backend_id: address.to_owned(),
            address: address.to_owned(),
            sticky_id: None,
            weight,
            backup: false,
            ..Default::default()
        }
    }

    fn request(request_type: RequestType) -> Request {
        Request {
            request_type: Some(request_type),
        }
    }

    #[test]
    fn a_backend_the_file_does_not_have_is_announced() {
        let index = index();
        let added = request(RequestType::AddBackend(proto::AddBackend {
            backend: backend("127.0.0.1:9002", 100),
        }));
        assert_eq!(
            index.announce(&added).as_deref(),
            Some("not in sluice.toml: a reload will remove it")
        );
    }

    #[test]
    fn what_the_file_says_is_not_announced_and_what_differs_is() {
        let index = index();
        let same = request(RequestType::UpdateBackend(file_backend()));
        assert_eq!(index.announce(&same), None);
        let heavier = request(RequestType::UpdateBackend(proto::Backend {
            weight: 50,
            ..file_backend()
        }));
        assert_eq!(
            index.announce(&heavier).as_deref(),
            Some("sluice.toml says otherwise: a reload will set it back")
        );
    }

    /// The file's state with its one backend's weight set to `weight`.
    fn weighted(weight: u32) -> ConfigState {
        let mut state = file_state();
        let update = request(RequestType::UpdateBackend(proto::Backend {
            weight,
            ..file_backend()
        }));
        state.apply(&update).expect("applies");
        state
    }

    fn weight_change(weight: u32) -> Request {
        request(RequestType::UpdateBackend(proto::Backend {
            weight,
            ..file_backend()
        }))
    }

    #[test]
    fn a_reload_of_another_file_keeps_the_start_file_for_ctl_and_patches_the_state_index() {
        let start = PathBuf::from("/etc/sluice/sluice.toml");
        let other = PathBuf::from("/etc/sluice/other.toml");
        let slot = IndexSlot::default();
        slot.build(start.clone(), weighted(10).generate_requests());
        let state = Mutex::new(weighted(50));
        slot.patch(other, false, weighted(10), weighted(50), &state);
        // ctl changes still compare with the start file.
        assert_eq!(slot.announce(&weight_change(10)), None);
        assert!(slot.announce(&weight_change(50)).is_some());
        // Back to the start file, which changed meanwhile: the state's index is patched.
        *lock(&state) = weighted(20);
        slot.patch(start, true, weighted(50), weighted(20), &state);
        assert_eq!(slot.announce(&weight_change(20)), None);
        assert_eq!(
            slot.announce(&weight_change(10)).as_deref(),
            Some("sluice.toml says otherwise: a reload will set it back")
        );
    }

    #[test]
    fn without_an_index_of_the_state_a_reload_of_the_start_file_indexes_the_state() {
        let start = PathBuf::from("/etc/sluice/sluice.toml");
        let slot = IndexSlot::default();
        slot.build(start.clone(), weighted(10).generate_requests());
        slot.forget_state();
        // Only the part is given: were it patched into the old index, the
        // weight 10 would still agree.
        let state = Mutex::new(weighted(30));
        slot.patch(
            start,
            true,
            ConfigState::default(),
            ConfigState::default(),
            &state,
        );
        assert_eq!(slot.announce(&weight_change(30)), None);
        assert!(slot.announce(&weight_change(10)).is_some());
    }

    #[test]
    fn removing_what_the_file_has_is_announced() {
        let index = index();
        let removed = request(RequestType::RemoveBackend(proto::RemoveBackend {
            cluster_id: "api".to_owned(),
            address: "127.0.0.1:9001".to_owned(),
            backend_id: None,
            ..Default::default()
        }));
        assert_eq!(
            index.announce(&removed).as_deref(),
            Some("still in sluice.toml: a reload will add it back")
        );
        let check = request(RequestType::SetHealthCheck(proto::SetHealthCheck {
            cluster_id: "api".to_owned(),
            config: Some(proto::HealthCheckConfig {
                uri: "/health".to_owned(),
                interval_ms: 1000,
                timeout_ms: 1000,
                healthy_threshold: 1,
                unhealthy_threshold: 1,
                ..Default::default()
            }),
        }));
        assert_eq!(
            index.announce(&check).as_deref(),
            Some("not in sluice.toml: a reload will remove it")
        );
    }
}
