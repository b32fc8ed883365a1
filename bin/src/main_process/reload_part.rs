//! A reload that compares only the clusters whose text changed.
//!
//! When main's state is still exactly what the last read of a file made it
//! (nothing wrote to it since: its write count says so), and the new read of
//! the file reused the parse of every other cluster (same text, same
//! listeners and certificates), the whole diff is the diff of the parts that
//! hold the changed, added and removed clusters (see `ConfigState::subset`).
//! Building and comparing those parts costs what changed, where the whole
//! target state cost as much as the file.
//!
//! Anything else (etcd, backends given by host name, a state changed by ctl
//! or by DNS since, a part that does not build) takes the whole path, which
//! also gives every refusal its usual words.

use std::collections::HashSet;

use log::debug;

use sluice_command::config::{Config, LastRead};
use sluice_command::proto::Response;
use sluice_command::state::ConfigState;

use super::dns::Prepared;
use super::{lock, MainProcess};

/// What main's state was last made equal to: a read of the parse cache, and
/// the state's write count right after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Converged {
    /// The parse cache's number for that read.
    pub(crate) read: u64,
    /// The state's write count once it was applied.
    pub(crate) writes: u64,
}

/// A reload target made of the changed clusters only.
pub(crate) struct Part {
    /// The changed and added clusters, with every listener and certificate.
    pub(crate) prepared: Prepared,
    /// The read this one compared with.
    compared_with: u64,
}

/// The target of the changed clusters of `config`, read by
/// `ParseCache::load_changes` (which leaves out the unchanged ones), when this
/// reload can compare those alone.
pub(crate) fn plan(main: &MainProcess, config: &Config, read: &LastRead) -> Option<Part> {
    let Some(compared_with) = read.compared_with else {
        debug!("reload: no cluster reused from the last read, the whole state is compared");
        return None;
    };
    let Some(converged) = *lock(&main.converged) else {
        debug!("reload: the state is not the one a read of the file left, it is compared whole");
        return None;
    };
    let usable = converged.read == compared_with
        && config.backend_names.is_empty()
        && main.etcd.get().is_none()
        && !(config.clusters.is_empty() && read.unchanged == 0)
        && !config.listeners.is_empty();
    if !usable {
        debug!("reload: the whole state is compared (etcd, names or another read)");
        return None;
    }
    // `config` holds the changed and added clusters (and, from a whole read,
    // the unchanged ones too, which the diff then finds equal). A part that
    // does not build is refused by the whole file, in its words.
    let prepared = main.dns.prepare_config(config).ok()?;
    Some(Part {
        prepared,
        compared_with,
    })
}

/// Applies the difference between `part` and the same clusters of main's
/// state, when the state is still the one the compared read left. Answers
/// with what `apply` answers, and the part of the state that was replaced;
/// `None` when the whole path must be taken. `dropped` names the clusters of
/// the compared read that the new one no longer has ([`ParseCache::dropped`]).
/// The caller holds [`MainProcess::lock_changes`].
///
/// [`ParseCache::dropped`]: sluice_command::config::ParseCache::dropped
pub(crate) fn converge_part<'a>(
    main: &MainProcess,
    part: &'a Part,
    dropped: impl Iterator<Item = &'a str>,
    apply: impl FnOnce(&[sluice_command::proto::Request]) -> Response,
) -> Option<(Response, ConfigState)> {
    let converged = (*lock(&main.converged))?;
    let (requests, replaced) = {
        let state = lock(&main.state);
        if state.writes() != converged.writes || converged.read != part.compared_with {
            debug!("reload: the state changed since the last read, it is compared whole");
            return None;
        }
        let target = &part.prepared.state;
        if target.listeners().is_empty() {
            return None;
        }
        let mut ids: HashSet<&str> = target.cluster_ids().collect();
        // The state is the compared read's: its clusters are the part's and the
        // dropped ones.
        ids.extend(dropped);
        let replaced = state.subset(&ids)?;
        debug!(
            "reload: {} changed, added or removed clusters compared",
            ids.len()
        );
        (replaced.diff(target), replaced)
    };
    Some((apply(&requests), replaced))
}
