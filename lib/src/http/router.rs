//! Routing of one HTTP listener's requests: hostname, path and method → route.
//!
//! The most specific frontend wins:
//! 1. hostname: exact, then `*.suffix` wildcards (longest suffix first; a
//!    wildcard matches any depth below its suffix but not the suffix itself, like
//!    nginx), then `*`. A host level whose paths all miss falls through to the
//!    next level;
//! 2. path: exact, then the longest prefix, then regexes in insertion order (a
//!    regex must match the whole path);
//! 3. at the same host and path, a rule for the request's method beats a rule
//!    without method.
//!
//! Host comparison ignores ASCII case, a trailing dot and a port. Paths are
//! compared without the query string; an empty path (`OPTIONS *`) routes as `/`.

use std::{collections::HashMap, rc::Rc};

use regex::bytes::Regex;
use sluice_command::proto::{HttpFrontend, PathRuleKind};
use thiserror::Error;

/// Longest hostname considered (DNS names are at most 253 bytes).
const MAX_HOST_LEN: usize = 255;

/// Length up to which a router's lists grow one item at a time (see `insert_tight`).
const TIGHT_LIST_LEN: usize = 8;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// To one of this cluster's backends.
    Cluster(Rc<str>),
    /// Nowhere: answered 403.
    Deny,
    /// Answered with a redirect to the same URL over https (a frontend with
    /// `redirect_https` on a listener without TLS).
    RedirectHttps,
    /// To one of this cluster's backends; responses get a `Strict-Transport-Security`
    /// field with this value (a frontend with `hsts` on a TLS listener).
    ClusterWithHsts {
        /// The cluster.
        cluster: Rc<str>,
        /// The field's value.
        hsts: Rc<str>,
    },
}

impl Route {
    /// The route of a frontend on a listener with TLS (`tls`) or without.
    fn of(frontend: &HttpFrontend, tls: bool) -> Self {
        if frontend.redirect_https == Some(true) && !tls {
            return Route::RedirectHttps;
        }
        match (
            &frontend.cluster_id,
            frontend.hsts.as_deref().filter(|_| tls),
        ) {
            (Some(cluster), Some(hsts)) => Route::ClusterWithHsts {
                cluster: cluster.as_str().into(),
                hsts: hsts.into(),
            },
            (Some(cluster), None) => Route::Cluster(cluster.as_str().into()),
            (None, _) => Route::Deny,
        }
    }
}

/// Why a frontend could not be added or removed.
#[derive(Debug, Error)]
pub enum RouterError {
    /// Hostname empty, with a port, or with bytes no hostname holds.
    #[error("invalid hostname {0:?}")]
    InvalidHostname(String),
    /// The path regex does not compile.
    #[error("invalid path regex")]
    InvalidRegex(#[from] regex::Error),
    /// Unknown path rule kind.
    #[error("unknown path rule kind {0}")]
    InvalidPathKind(i32),
    /// Same hostname, path and method as an existing frontend.
    #[error("a frontend with this hostname, path and method already exists")]
    Duplicate,
    /// No frontend with this hostname, path, method and route.
    #[error("no such frontend")]
    NotFound,
}

/// The routes of one listener.
#[derive(Debug, Default)]
pub struct Router {
    exact: HashMap<Vec<u8>, Rules>,
    /// Suffixes with their leading dot, longest first.
    wildcards: Vec<(Vec<u8>, Rules)>,
    any: Rules,
    /// Its listener terminates TLS.
    tls: bool,
}

#[derive(Debug, Default)]
struct Rules {
    exact: HashMap<Vec<u8>, Candidates>,
    /// Longest prefix first.
    prefixes: Vec<(Vec<u8>, Candidates)>,
    regexes: Vec<(Regex, Candidates)>,
}

/// Rules for one host and path: method-specific ones first.
#[derive(Debug, Default)]
struct Candidates(Vec<(Option<Vec<u8>>, Route)>);

enum HostKey {
    Exact(Vec<u8>),
    Wildcard(Vec<u8>),
    Any,
}

impl Router {
    /// An empty router: every lookup misses.
    pub fn new() -> Self {
        Router::default()
    }

    /// An empty router for a listener with TLS (`tls`) or without: its frontends'
    /// `redirect_https` applies only without, their `hsts` only with.
    pub fn for_listener(tls: bool) -> Self {
        Router {
            tls,
            ..Router::default()
        }
    }

    /// Adds a frontend. On error the router is unchanged.
    pub fn add(&mut self, frontend: &HttpFrontend) -> Result<(), RouterError> {
        let added = self.insert(frontend);
        if added.is_err() {
            // A refused insert may have left an empty host level behind.
            if let Ok(host) = host_key(&frontend.hostname) {
                self.prune(&host);
            }
        }
        added
    }

    fn insert(&mut self, frontend: &HttpFrontend) -> Result<(), RouterError> {
        let route = Route::of(frontend, self.tls);
        let method = frontend.method.as_ref().map(|m| m.as_bytes().to_vec());
        let kind = path_kind(frontend)?;
        let value = frontend.path.value.as_bytes();
        if kind == PathRuleKind::Regex {
            // Compile before touching the tables so a bad regex changes nothing.
            anchored(&frontend.path.value)?;
        }
        let rules = match host_key(&frontend.hostname)? {
            HostKey::Exact(host) => self.exact.entry(host).or_default(),
            HostKey::Wildcard(suffix) => {
                let at = match self.wildcards.iter().position(|(s, _)| *s == suffix) {
                    Some(at) => at,
                    None => {
                        let at = self
                            .wildcards
                            .iter()
                            .position(|(s, _)| s.len() < suffix.len())
                            .unwrap_or(self.wildcards.len());
                        insert_tight(&mut self.wildcards, at, (suffix, Rules::default()));
                        at
                    }
                };
                &mut self.wildcards[at].1
            }
            HostKey::Any => &mut self.any,
        };
        let candidates = match kind {
            PathRuleKind::Exact => rules.exact.entry(value.to_vec()).or_default(),
            PathRuleKind::Prefix => {
                let at = match rules.prefixes.iter().position(|(p, _)| p == value) {
                    Some(at) => at,
                    None => {
                        let at = rules
                            .prefixes
                            .iter()
                            .position(|(p, _)| p.len() < value.len())
                            .unwrap_or(rules.prefixes.len());
                        insert_tight(
                            &mut rules.prefixes,
                            at,
                            (value.to_vec(), Candidates::default()),
                        );
                        at
                    }
                };
                &mut rules.prefixes[at].1
            }
            PathRuleKind::Regex => {
                let source = &frontend.path.value;
                match rules
                    .regexes
                    .iter()
                    .position(|(r, _)| same_regex(r, source))
                {
                    Some(at) => &mut rules.regexes[at].1,
                    None => {
                        let at = rules.regexes.len();
                        insert_tight(
                            &mut rules.regexes,
                            at,
                            (anchored(source)?, Candidates::default()),
                        );
                        let last = rules.regexes.len() - 1;
                        &mut rules.regexes[last].1
                    }
                }
            }
        };
        candidates.insert(method, route)
    }

    /// Removes a frontend added before (same hostname, path, method and route).
    pub fn remove(&mut self, frontend: &HttpFrontend) -> Result<(), RouterError> {
        let route = Route::of(frontend, self.tls);
        let method = frontend.method.as_ref().map(|m| m.as_bytes());
        let kind = path_kind(frontend)?;
        let value = frontend.path.value.as_bytes();
        let host = host_key(&frontend.hostname)?;
        let rules = match &host {
            HostKey::Exact(host) => self.exact.get_mut(host),
            HostKey::Wildcard(suffix) => self
                .wildcards
                .iter_mut()
                .find(|(s, _)| s == suffix)
                .map(|(_, rules)| rules),
            HostKey::Any => Some(&mut self.any),
        }
        .ok_or(RouterError::NotFound)?;
        match kind {
            PathRuleKind::Exact => {
                let candidates = rules.exact.get_mut(value).ok_or(RouterError::NotFound)?;
                candidates.remove(method, &route)?;
                if candidates.0.is_empty() {
                    rules.exact.remove(value);
                }
            }
            PathRuleKind::Prefix => {
                remove_from(&mut rules.prefixes, |p| p == value, method, &route)?
            }
            PathRuleKind::Regex => {
                let source = &frontend.path.value;
                remove_from(
                    &mut rules.regexes,
                    |r| same_regex(r, source),
                    method,
                    &route,
                )?;
            }
        }
        self.prune(&host);
        Ok(())
    }

    /// The route for a request, if any frontend matches.
    pub fn lookup(&self, host: &[u8], path: &[u8], method: &[u8]) -> Option<&Route> {
        let path: &[u8] = if path.is_empty() { b"/" } else { path };
        let mut storage = [0u8; MAX_HOST_LEN];
        if let Some(host) = normalize_host(host, &mut storage) {
            if let Some(route) = self.exact.get(host).and_then(|r| r.lookup(path, method)) {
                return Some(route);
            }
            for (suffix, rules) in &self.wildcards {
                if host.len() > suffix.len() && host.ends_with(suffix) {
                    if let Some(route) = rules.lookup(path, method) {
                        return Some(route);
                    }
                }
            }
        }
        self.any.lookup(path, method)
    }

    /// Drops the level of `host` if it holds no rule any more: the cost of one lookup,
    /// whatever the number of hosts.
    fn prune(&mut self, host: &HostKey) {
        match host {
            HostKey::Exact(host) => {
                if self.exact.get(host).is_some_and(Rules::is_empty) {
                    self.exact.remove(host);
                }
            }
            HostKey::Wildcard(suffix) => {
                if let Some(at) = self
                    .wildcards
                    .iter()
                    .position(|(s, rules)| s == suffix && rules.is_empty())
                {
                    self.wildcards.remove(at);
                }
            }
            HostKey::Any => {}
        }
    }
}

impl Rules {
    fn lookup(&self, path: &[u8], method: &[u8]) -> Option<&Route> {
        if let Some(route) = self.exact.get(path).and_then(|c| c.pick(method)) {
            return Some(route);
        }
        let prefixed = self
            .prefixes
            .iter()
            .filter(|(prefix, _)| path.starts_with(prefix))
            .find_map(|(_, c)| c.pick(method));
        prefixed.or_else(|| {
            self.regexes
                .iter()
                .filter(|(regex, _)| regex.is_match(path))
                .find_map(|(_, c)| c.pick(method))
        })
    }

    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty() && self.regexes.is_empty()
    }
}

impl Candidates {
    fn insert(&mut self, method: Option<Vec<u8>>, route: Route) -> Result<(), RouterError> {
        if self.0.iter().any(|(m, _)| *m == method) {
            return Err(RouterError::Duplicate);
        }
        let at = if method.is_some() { 0 } else { self.0.len() };
        insert_tight(&mut self.0, at, (method, route));
        Ok(())
    }

    fn remove(&mut self, method: Option<&[u8]>, route: &Route) -> Result<(), RouterError> {
        let at = self
            .0
            .iter()
            .position(|(m, r)| m.as_deref() == method && r == route)
            .ok_or(RouterError::NotFound)?;
        self.0.remove(at);
        Ok(())
    }

    fn pick(&self, method: &[u8]) -> Option<&Route> {
        self.0
            .iter()
            .find(|(m, _)| m.as_deref().is_none_or(|m| m == method))
            .map(|(_, route)| route)
    }
}

/// Inserts into a list without the slack of doubling while it is short: most hosts have
/// one path and most paths one method, and the slack of 10 000 hosts is megabytes. A
/// long list grows as usual, so that its inserts stay amortized.
fn insert_tight<T>(list: &mut Vec<T>, at: usize, item: T) {
    if list.len() < TIGHT_LIST_LEN {
        list.reserve_exact(1);
    }
    list.insert(at, item);
}

fn remove_from<K>(
    list: &mut Vec<(K, Candidates)>,
    is_key: impl Fn(&K) -> bool,
    method: Option<&[u8]>,
    route: &Route,
) -> Result<(), RouterError> {
    let at = list
        .iter()
        .position(|(k, _)| is_key(k))
        .ok_or(RouterError::NotFound)?;
    list[at].1.remove(method, route)?;
    if list[at].1 .0.is_empty() {
        list.remove(at);
    }
    Ok(())
}

fn path_kind(frontend: &HttpFrontend) -> Result<PathRuleKind, RouterError> {
    PathRuleKind::try_from(frontend.path.kind)
        .map_err(|_| RouterError::InvalidPathKind(frontend.path.kind))
}

fn anchored(source: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!(r"\A(?:{source})\z"))
}

fn same_regex(regex: &Regex, source: &str) -> bool {
    regex
        .as_str()
        .strip_prefix(r"\A(?:")
        .and_then(|s| s.strip_suffix(r")\z"))
        == Some(source)
}

fn host_key(hostname: &str) -> Result<HostKey, RouterError> {
    let invalid = || RouterError::InvalidHostname(hostname.to_owned());
    if hostname == "*" {
        return Ok(HostKey::Any);
    }
    let lower = hostname.to_ascii_lowercase();
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    let (wildcard, labels) = match name.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, name),
    };
    let valid = !labels.is_empty()
        && labels.len() < MAX_HOST_LEN
        && labels
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
        && !labels.split('.').any(str::is_empty);
    if !valid {
        return Err(invalid());
    }
    Ok(if wildcard {
        HostKey::Wildcard(format!(".{labels}").into_bytes())
    } else {
        HostKey::Exact(labels.as_bytes().to_vec())
    })
}

/// Lowercases `host` into `storage` without its port and trailing dot.
fn normalize_host<'a>(host: &[u8], storage: &'a mut [u8; MAX_HOST_LEN]) -> Option<&'a [u8]> {
    let name = if host.first() == Some(&b'[') {
        let end = host.iter().position(|&b| b == b']')?;
        &host[..=end]
    } else {
        let end = host.iter().position(|&b| b == b':').unwrap_or(host.len());
        &host[..end]
    };
    let name = name.strip_suffix(b".").unwrap_or(name);
    let out = storage.get_mut(..name.len())?;
    for (o, b) in out.iter_mut().zip(name) {
        *o = b.to_ascii_lowercase();
    }
    Some(out)
}

#[cfg(test)]
mod tests;
