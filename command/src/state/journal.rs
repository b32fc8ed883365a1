//! What a change did to the state, entry by entry, so that it can be undone
//! at the cost of the change: never a copy of the whole state.
//!
//! Every write to the state's maps goes through one `put_*` function that
//! records the entry as it was and as it becomes. [`ConfigState::revert`]
//! puts the recorded entries back, newest first; [`Undo::requests`] says the
//! same as requests, so that a worker that applied a change can be brought
//! back by applying them.
//!
//! A batch applied to an empty state (a new worker's replay) needs no record
//! of the whole: its undo is "back to empty" ([`ConfigState::requests_undoing`]).
//! Such a journal ([`Undo::from_empty`]) keeps only the writes of the request
//! being applied, until its owner [settles](Undo::settle) it, so that the
//! replay costs no copy of the state it builds.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::generate as make;
use super::{ConfigState, FrontendRef, HttpFrontendKey, Listener, SmallMap, StoredCertificate};
use crate::proto::{self, request::RequestType};

/// One entry of the state before and after a write.
#[derive(Debug, Clone, PartialEq)]
enum Change {
    Listener {
        address: SocketAddr,
        before: Option<Listener>,
        after: Option<Listener>,
    },
    Active {
        listener: Listener,
        before: bool,
    },
    Cluster {
        cluster_id: String,
        before: Option<proto::Cluster>,
        after: Option<proto::Cluster>,
    },
    Backend {
        cluster_id: String,
        address: SocketAddr,
        before: Option<proto::Backend>,
        after: Option<proto::Backend>,
    },
    HttpFrontend {
        key: HttpFrontendKey,
        before: Option<proto::HttpFrontend>,
        after: Option<proto::HttpFrontend>,
    },
    TcpFrontend {
        address: SocketAddr,
        before: Option<proto::TcpFrontend>,
        after: Option<proto::TcpFrontend>,
    },
    Certificate {
        fingerprint: String,
        before: Option<Box<StoredCertificate>>,
        after: Option<Box<StoredCertificate>>,
    },
}

/// What an [`Undo`] keeps of the writes it sees.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
enum Keeping {
    /// Every write, to undo them all.
    #[default]
    Everything,
    /// Nothing: a state built from nothing is dropped whole if refused.
    Nothing,
    /// The writes since the last [`Undo::settle`]: the state was empty, so
    /// undoing everything is emptying it.
    SinceSettled,
}

/// The writes of one or more applied requests, oldest first: what
/// [`ConfigState::revert`] undoes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Undo {
    changes: Vec<Change>,
    keeping: Keeping,
}

impl Undo {
    /// Nothing recorded yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A journal for changes to an empty state: it keeps what reverting the
    /// writes of the request being applied needs (so that a request refused
    /// halfway, or whose live part fails, can be put back: the values written
    /// over, not the values written), and forgets them when told that
    /// the request stays ([`Undo::settle`]). Undoing the whole is emptying
    /// the state: see [`ConfigState::requests_undoing`].
    pub fn from_empty() -> Self {
        Undo {
            changes: Vec::new(),
            keeping: Keeping::SinceSettled,
        }
    }

    /// Says that the requests applied so far stay: a journal
    /// [from empty](Undo::from_empty) forgets their writes (keeping its
    /// room for the next request's); any other keeps them.
    pub fn settle(&mut self) {
        if self.keeping == Keeping::SinceSettled {
            self.changes.clear();
        }
    }

    /// Whether it keeps the writes it is given (a journal that keeps none
    /// lets writes move values instead of copying them).
    fn keeps(&self) -> bool {
        self.keeping != Keeping::Nothing
    }

    /// How many writes are recorded; a mark for [`Undo::split_off`].
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Takes the writes recorded since `mark` (an earlier [`Undo::len`]).
    pub fn split_off(&mut self, mark: usize) -> Undo {
        Undo {
            changes: self.changes.split_off(mark.min(self.changes.len())),
            keeping: self.keeping,
        }
    }

    /// The HTTP frontends removed since `mark`, such as those a cluster's
    /// removal took with it.
    pub fn removed_http_frontends(
        &self,
        mark: usize,
    ) -> impl Iterator<Item = &proto::HttpFrontend> + '_ {
        self.changes[mark.min(self.changes.len())..]
            .iter()
            .filter_map(|change| match change {
                Change::HttpFrontend {
                    before: Some(before),
                    after: None,
                    ..
                } => Some(before),
                _ => None,
            })
    }

    /// The TCP frontends removed since `mark`.
    pub fn removed_tcp_frontends(
        &self,
        mark: usize,
    ) -> impl Iterator<Item = &proto::TcpFrontend> + '_ {
        self.changes[mark.min(self.changes.len())..]
            .iter()
            .filter_map(|change| match change {
                Change::TcpFrontend {
                    before: Some(before),
                    after: None,
                    ..
                } => Some(before),
                _ => None,
            })
    }

    /// Requests that, applied in order to the state these writes led to,
    /// bring it back to the state before them. A journal
    /// [from empty](Undo::from_empty) keeps only what reverting its unsettled
    /// writes needs (not the values written): [`ConfigState::requests_undoing`]
    /// gives its requests.
    pub fn requests(&self) -> Vec<proto::Request> {
        let mut requests = Vec::with_capacity(self.changes.len());
        for change in self.changes.iter().rev() {
            inverse(change, &mut requests);
        }
        requests
    }

    /// A copy of a value being written, if the journal keeps what requests need
    /// ([`Undo::requests`]); reverting needs only the values written over.
    fn copy_of<T: Clone>(&self, value: &Option<T>) -> Option<T> {
        match self.keeping {
            Keeping::Everything => value.clone(),
            Keeping::Nothing | Keeping::SinceSettled => None,
        }
    }

    fn push(&mut self, change: Change) {
        if self.keeps() {
            self.changes.push(change);
        }
    }
}

/// The requests that undo one write.
fn inverse(change: &Change, out: &mut Vec<proto::Request>) {
    match change {
        Change::Listener { before, after, .. } => match (before, after) {
            (None, Some(after)) => out.push(make::remove_listener(after)),
            (Some(before), None) => out.push(make::add_listener(before)),
            (Some(before), Some(_)) => out.push(make::update_listener(before)),
            (None, None) => {}
        },
        Change::Active { listener, before } => out.push(if *before {
            make::activate_listener(listener)
        } else {
            make::deactivate_listener(listener)
        }),
        Change::Cluster {
            cluster_id,
            before,
            after,
        } => match (before, after) {
            (None, Some(_)) => out.push(make::remove_cluster(cluster_id)),
            (Some(before), _) => out.push(make::add_cluster(before)),
            (None, None) => {}
        },
        Change::Backend { before, after, .. } => match (before, after) {
            (None, Some(after)) => out.push(make::remove_backend(after)),
            (Some(before), None) => out.push(make::add_backend(before)),
            (Some(before), Some(_)) => out.push(make::update_backend(before)),
            (None, None) => {}
        },
        Change::HttpFrontend { before, after, .. } => {
            if let Some(after) = after {
                out.push(make::remove_http_frontend(after));
            }
            if let Some(before) = before {
                out.push(make::add_http_frontend(before));
            }
        }
        Change::TcpFrontend { before, after, .. } => {
            if let Some(after) = after {
                out.push(make::remove_tcp_frontend(after));
            }
            if let Some(before) = before {
                out.push(make::add_tcp_frontend(before));
            }
        }
        Change::Certificate {
            fingerprint,
            before,
            after,
        } => {
            if after.is_some() {
                out.push(make::remove_certificate(fingerprint));
            }
            if let Some(before) = before {
                out.push(make::add_certificate(before));
            }
        }
    }
}

impl ConfigState {
    /// The state `requests` build from nothing, applied in order without keeping an
    /// undo of each write (a refused request discards the whole state, so there is
    /// nothing to go back to): what starting from a file costs, and no more. The
    /// error names the refused request.
    pub fn from_requests(requests: &[proto::Request]) -> Result<ConfigState, super::StateError> {
        let mut state = ConfigState::default();
        let mut undo = Undo {
            changes: Vec::new(),
            keeping: Keeping::Nothing,
        };
        state.apply_all(requests, &mut undo)?;
        Ok(state)
    }

    /// Requests that, applied in order, undo the writes `undo` recorded on
    /// this state: [`Undo::requests`], or for a journal
    /// [from empty](Undo::from_empty), the removal of everything the state
    /// holds (its writes since it was last settled must have been reverted).
    pub fn requests_undoing(&self, undo: &Undo) -> Vec<proto::Request> {
        match undo.keeping {
            Keeping::SinceSettled => self.diff(&ConfigState::new()),
            Keeping::Everything | Keeping::Nothing => undo.requests(),
        }
    }

    /// Applies every request in order, as one change: if one is refused, the
    /// state is put back as it was and the error names that request. On
    /// success, the returned [`Undo`] reverts the whole batch.
    pub fn apply_batch(&mut self, requests: &[proto::Request]) -> Result<Undo, super::StateError> {
        let mut undo = Undo::new();
        match self.apply_all(requests, &mut undo) {
            Ok(()) => Ok(undo),
            Err(error) => {
                self.revert(undo);
                Err(error)
            }
        }
    }

    /// Applies a request and records what it wrote in `undo`. On error, what
    /// this request wrote is reverted and `undo` is as it was.
    pub fn apply_recorded(
        &mut self,
        request: &proto::Request,
        undo: &mut Undo,
    ) -> Result<(), super::StateError> {
        let mark = undo.len();
        let applied = match &request.request_type {
            Some(RequestType::Batch(batch)) => self.apply_all(&batch.requests, undo),
            _ => self.apply_one(request, undo),
        };
        if applied.is_err() {
            let mine = undo.split_off(mark);
            self.revert(mine);
        }
        applied
    }

    /// Undoes recorded writes, newest first.
    pub fn revert(&mut self, undo: Undo) {
        for change in undo.changes.into_iter().rev() {
            let mut scratch = Undo::new();
            match change {
                Change::Listener {
                    address, before, ..
                } => self.put_listener(&mut scratch, address, before),
                Change::Active { listener, before } => {
                    self.put_active(&mut scratch, &listener, before)
                }
                Change::Cluster {
                    cluster_id, before, ..
                } => self.put_cluster(&mut scratch, &cluster_id, before),
                Change::Backend {
                    cluster_id,
                    address,
                    before,
                    ..
                } => self.put_backend(&mut scratch, &cluster_id, address, before),
                Change::HttpFrontend { key, before, .. } => {
                    self.put_http_frontend(&mut scratch, key, before)
                }
                Change::TcpFrontend {
                    address, before, ..
                } => self.put_tcp_frontend(&mut scratch, address, before),
                Change::Certificate {
                    fingerprint,
                    before,
                    ..
                } => self.put_certificate(&mut scratch, fingerprint, before.map(|b| *b)),
            }
        }
    }

    fn apply_all(
        &mut self,
        requests: &[proto::Request],
        undo: &mut Undo,
    ) -> Result<(), super::StateError> {
        for request in requests {
            self.apply_recorded(request, undo)
                .map_err(|source| super::StateError::InBatch {
                    request: ConfigState::summary_of(request),
                    source: Box::new(source),
                })?;
        }
        Ok(())
    }

    pub(super) fn put_listener(
        &mut self,
        undo: &mut Undo,
        address: SocketAddr,
        value: Option<Listener>,
    ) {
        self.writes.count();
        let after = undo.copy_of(&value);
        let before = match value {
            Some(listener) => self.listeners.insert(address, listener),
            None => self.listeners.remove(&address),
        };
        undo.push(Change::Listener {
            address,
            before,
            after,
        });
    }

    pub(super) fn put_active(&mut self, undo: &mut Undo, listener: &Listener, active: bool) {
        self.writes.count();
        let Ok(address) = listener.address().parse::<SocketAddr>() else {
            return;
        };
        let before = if active {
            !self.active_listeners.insert(address)
        } else {
            self.active_listeners.remove(&address)
        };
        if before != active && undo.keeps() {
            undo.push(Change::Active {
                listener: listener.clone(),
                before,
            });
        }
    }

    /// Sets a cluster (its backend map is created with it, and must be
    /// empty when it goes).
    pub(super) fn put_cluster(
        &mut self,
        undo: &mut Undo,
        cluster_id: &str,
        value: Option<proto::Cluster>,
    ) {
        self.writes.count();
        let after = undo.copy_of(&value);
        let before = match value {
            Some(cluster) => {
                self.backends.entry(cluster_id.to_owned()).or_default();
                self.clusters.insert(cluster_id.to_owned(), cluster)
            }
            None => {
                self.backends.remove(cluster_id);
                self.clusters.remove(cluster_id)
            }
        };
        if undo.keeps() {
            undo.push(Change::Cluster {
                cluster_id: cluster_id.to_owned(),
                before,
                after,
            });
        }
    }

    /// Sets a backend of an existing cluster.
    pub(super) fn put_backend(
        &mut self,
        undo: &mut Undo,
        cluster_id: &str,
        address: SocketAddr,
        value: Option<proto::Backend>,
    ) {
        self.writes.count();
        let Some(backends) = self.backends.get_mut(cluster_id) else {
            return;
        };
        let after = undo.copy_of(&value);
        let before = match value {
            Some(backend) => backends.insert(address, backend),
            None => backends.remove(&address),
        };
        if undo.keeps() {
            undo.push(Change::Backend {
                cluster_id: cluster_id.to_owned(),
                address,
                before,
                after,
            });
        }
    }

    pub(super) fn put_http_frontend(
        &mut self,
        undo: &mut Undo,
        key: HttpFrontendKey,
        value: Option<proto::HttpFrontend>,
    ) {
        self.writes.count();
        let after = undo.copy_of(&value);
        let user = FrontendRef::Http(key.clone());
        let before = match value {
            Some(frontend) => self.http_frontends.insert(key.clone(), frontend),
            None => self.http_frontends.remove(&key),
        };
        if let Some(cluster_id) = before.as_ref().and_then(|f| f.cluster_id.as_deref()) {
            self.forget_user(cluster_id, &user);
        }
        let added_to = self
            .http_frontends
            .get(&key)
            .and_then(|f| f.cluster_id.as_deref());
        if let Some(cluster_id) = added_to {
            remember_user(&mut self.cluster_users, cluster_id, user);
        }
        undo.push(Change::HttpFrontend { key, before, after });
    }

    pub(super) fn put_tcp_frontend(
        &mut self,
        undo: &mut Undo,
        address: SocketAddr,
        value: Option<proto::TcpFrontend>,
    ) {
        self.writes.count();
        let after = undo.copy_of(&value);
        let user = FrontendRef::Tcp(address);
        let before = match value {
            Some(frontend) => self.tcp_frontends.insert(address, frontend),
            None => self.tcp_frontends.remove(&address),
        };
        if let Some(before) = &before {
            self.forget_user(&before.cluster_id, &user);
        }
        if let Some(added) = self.tcp_frontends.get(&address) {
            remember_user(&mut self.cluster_users, &added.cluster_id, user);
        }
        undo.push(Change::TcpFrontend {
            address,
            before,
            after,
        });
    }

    pub(super) fn put_certificate(
        &mut self,
        undo: &mut Undo,
        fingerprint: String,
        value: Option<StoredCertificate>,
    ) {
        self.writes.count();
        let after = undo.copy_of(&value);
        let before = match value {
            Some(certificate) => self.certificates.insert(fingerprint.clone(), certificate),
            None => self.certificates.remove(&fingerprint),
        };
        undo.push(Change::Certificate {
            fingerprint,
            before: before.map(Box::new),
            after: after.map(Box::new),
        });
    }

    fn forget_user(&mut self, cluster_id: &str, user: &FrontendRef) {
        if let Some(users) = self.cluster_users.get_mut(cluster_id) {
            users.remove(user);
            if users.is_empty() {
                self.cluster_users.remove(cluster_id);
            }
        }
    }
}

/// Adds a frontend to the users of a cluster (`ConfigState::cluster_users`).
fn remember_user(
    cluster_users: &mut BTreeMap<String, SmallMap<FrontendRef, ()>>,
    cluster_id: &str,
    user: FrontendRef,
) {
    match cluster_users.get_mut(cluster_id) {
        Some(users) => {
            users.insert(user, ());
        }
        None => {
            let mut users = SmallMap::default();
            users.insert(user, ());
            cluster_users.insert(cluster_id.to_owned(), users);
        }
    }
}
