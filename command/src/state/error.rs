//! Why a request cannot change the state, or a state cannot be saved or loaded.

use std::io;
use std::net::AddrParseError;

/// Why [`super::ConfigState`] refused a request, or failed to save or load.
///
/// Every variant names the thing it is about, so that the message can be
/// shown to an operator as is.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The request carries no request type.
    #[error("empty request")]
    EmptyRequest,
    /// The request does not change the configuration (a query, a stop...).
    #[error("{0} does not change the configuration")]
    NotAStateChange(&'static str),
    /// The request is reserved in the protocol but not supported yet.
    #[error("{0} is not supported yet")]
    Unsupported(&'static str),
    /// A socket address does not parse.
    #[error("invalid {what} address {address:?}: {source}")]
    InvalidAddress {
        /// What the address is for (listener, backend, frontend).
        what: &'static str,
        /// The address as given.
        address: String,
        /// Why it does not parse.
        source: AddrParseError,
    },
    /// A field has a value that cannot be used.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidField {
        /// Which field, e.g. `cluster_id` or `health_check.uri`.
        field: &'static str,
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No cluster has this id.
    #[error("cluster {0} does not exist")]
    UnknownCluster(String),
    /// A cluster's protocol differs from what uses it.
    #[error("cluster {cluster_id} is {actual}, but {user} needs a {expected} cluster")]
    ClusterProtocolMismatch {
        /// The cluster.
        cluster_id: String,
        /// The cluster's protocol.
        actual: &'static str,
        /// The protocol needed.
        expected: &'static str,
        /// What needs it (a frontend, or "its frontends").
        user: String,
    },
    /// The cluster already has a backend with this address.
    #[error("cluster {cluster_id} already has a backend at {address}")]
    DuplicateBackend {
        /// The cluster.
        cluster_id: String,
        /// The backend's address.
        address: String,
    },
    /// The cluster already has a backend with this id.
    #[error("cluster {cluster_id} already has a backend with id {backend_id}")]
    DuplicateBackendId {
        /// The cluster.
        cluster_id: String,
        /// The backend id.
        backend_id: String,
    },
    /// The cluster has no backend with this id.
    #[error("cluster {cluster_id} has no backend with id {backend_id}")]
    UnknownBackendId {
        /// The cluster.
        cluster_id: String,
        /// The id asked for.
        backend_id: String,
    },
    /// A backend must be named by its address or its id.
    #[error("name the backend by its address or its id")]
    BackendNotNamed,
    /// A cluster with this id exists: `cluster add` does not overwrite it.
    #[error(
        "cluster {0} already exists; change it with `sluice ctl cluster update --id {0} \
         [--lb …] [--metric …] [--sticky|--no-sticky] [--sticky-cookie …] \
         [--max-connect-retries …]`"
    )]
    ClusterExists(String),
    /// A partial change names nothing to change.
    #[error("nothing to change: name at least one setting of the {0}")]
    NothingToChange(&'static str),
    /// A setting that the listener's protocol does not have.
    #[error("{setting} is an http listener setting; the listener at {address} is tcp")]
    NotAnHttpListener {
        /// The setting.
        setting: &'static str,
        /// The listener.
        address: String,
    },
    /// The cluster has no backend at this address.
    #[error("cluster {cluster_id} has no backend at {address}")]
    UnknownBackend {
        /// The cluster.
        cluster_id: String,
        /// The address asked for.
        address: String,
    },
    /// The backend at this address has another id than the one given.
    #[error("backend {cluster_id}/{address} has id {actual}, not {given}")]
    BackendIdMismatch {
        /// The cluster.
        cluster_id: String,
        /// The backend's address.
        address: String,
        /// The backend's id.
        actual: String,
        /// The id in the request.
        given: String,
    },
    /// A listener (of any protocol) already uses this address.
    #[error("a {protocol} listener already exists at {address}")]
    DuplicateListener {
        /// The address.
        address: String,
        /// The existing listener's protocol.
        protocol: &'static str,
    },
    /// No listener has this address.
    #[error("no listener exists at {0}")]
    UnknownListener(String),
    /// The listener at this address has another protocol than required.
    #[error("the listener at {address} is {actual}, not {expected}")]
    ListenerProtocolMismatch {
        /// The address.
        address: String,
        /// The listener's protocol.
        actual: &'static str,
        /// The protocol in the request.
        expected: &'static str,
    },
    /// The listener cannot be removed while frontends use it.
    #[error("the listener at {address} is still used by {frontends}")]
    ListenerInUse {
        /// The address.
        address: String,
        /// The frontends using it, comma-separated.
        frontends: String,
    },
    /// A certificate, its key or its chain cannot be used.
    #[error(transparent)]
    Certificate(#[from] crate::certificate::CertificateError),
    /// A certificate with this fingerprint already exists.
    #[error("certificate {0} already exists")]
    DuplicateCertificate(String),
    /// No certificate has this fingerprint.
    #[error("no certificate has the fingerprint {0}")]
    UnknownCertificate(String),
    /// A certificate names a listener that does not terminate TLS.
    #[error("the listener at {0} does not terminate TLS (expected an https listener or a tcp listener with tls)")]
    NotATlsListener(String),
    /// Two default certificates for one listener.
    #[error("certificate {existing} is already the default of a listener that {fingerprint} serves, expected one default per listener")]
    DuplicateDefaultCertificate {
        /// The certificate refused.
        fingerprint: String,
        /// The default certificate already there.
        existing: String,
    },
    /// A certificate gives no name and its certificate has no DNS name.
    #[error("certificate {0} has no DNS name, expected names")]
    NoCertificateNames(String),
    /// The listener cannot be removed or lose TLS while certificates name it.
    #[error("the listener at {address} is still named by certificate {fingerprints}")]
    ListenerHasCertificates {
        /// The address.
        address: String,
        /// The certificates naming it, comma-separated.
        fingerprints: String,
    },
    /// The same frontend (same identity) already exists.
    #[error("{0} already exists")]
    DuplicateFrontend(String),
    /// No frontend has this identity.
    #[error("{0} does not exist")]
    UnknownFrontend(String),
    /// A request of a batch was refused (so the whole batch was).
    #[error("{request}: {source}")]
    InBatch {
        /// What the refused request is about.
        request: String,
        /// Why it was refused.
        source: Box<StateError>,
    },
    /// A saved state holds no request: an empty file is never an empty state.
    #[error("the saved state is empty (0 requests): a truncated or empty file is not loaded")]
    EmptyStateFile,
    /// The state cannot be written.
    #[error("cannot save the state: {0}")]
    Save(#[source] serde_json::Error),
    /// Reading the saved state failed.
    #[error("cannot read the saved state: {0}")]
    Io(#[from] io::Error),
    /// A line of a saved state is not a request.
    #[error("saved state, line {line}: not a request: {source}")]
    Parse {
        /// 1-based line number.
        line: usize,
        /// Why it does not parse.
        source: serde_json::Error,
    },
    /// A line of a saved state is a request the state refuses.
    #[error("saved state, line {line}: {source}")]
    Replay {
        /// 1-based line number.
        line: usize,
        /// Why the request was refused.
        source: Box<StateError>,
    },
}
