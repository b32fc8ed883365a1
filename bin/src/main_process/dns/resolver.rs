//! The one thread of the main process that talks DNS: it owns a current-thread
//! tokio runtime and a `hickory-resolver` resolver, and answers lookups asked from
//! other threads over a channel. Nothing else in Sluice runs async code, and the
//! workers never resolve.

use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::TokioResolver;

/// Time one lookup may take, all attempts included.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// What a name resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    /// Its addresses, sorted, without duplicates; never empty.
    pub(crate) addresses: Vec<IpAddr>,
    /// When its shortest-lived record expires.
    pub(crate) valid_until: Instant,
}

/// The result of resolving one name: an answer or the resolver's error in words.
pub(crate) type Lookup = Result<Answer, String>;

/// Why the resolver could not be started.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResolverError {
    /// The system configuration could not be read.
    #[error("cannot read the system's DNS configuration (/etc/resolv.conf): {0}")]
    SystemConfig(String),
    /// The thread or its runtime could not be started.
    #[error("cannot start the DNS resolver thread: {0}")]
    Thread(#[from] std::io::Error),
}

enum Command {
    Lookup(Vec<String>, mpsc::Sender<Vec<Lookup>>),
    Servers(Vec<SocketAddr>, mpsc::Sender<Result<(), String>>),
}

/// A handle on the resolver thread; lookups block the calling thread only.
#[derive(Debug, Clone)]
pub(crate) struct ResolverHandle {
    commands: mpsc::Sender<Command>,
}

impl ResolverHandle {
    /// Starts the thread, resolving with `servers` (none: the system's).
    pub(crate) fn start(servers: &[SocketAddr]) -> Result<ResolverHandle, ResolverError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let resolver = {
            // Building the resolver spawns nothing, but wants to be inside its runtime.
            let _inside = runtime.enter();
            build_resolver(servers).map_err(ResolverError::SystemConfig)?
        };
        let (commands, receiver) = mpsc::channel();
        thread::Builder::new()
            .name("dns".into())
            .spawn(move || serve(runtime, resolver, receiver))?;
        Ok(ResolverHandle { commands })
    }

    /// Resolves every name at once; one result per name, in order.
    pub(crate) fn lookup(&self, names: &[String]) -> Vec<Lookup> {
        let (reply, answer) = mpsc::channel();
        let gone = || vec![Err("the resolver thread is gone".to_owned()); names.len()];
        if self
            .commands
            .send(Command::Lookup(names.to_vec(), reply))
            .is_err()
        {
            return gone();
        }
        answer.recv().unwrap_or_else(|_| gone())
    }

    /// Resolves with `servers` from now on (none: the system's).
    pub(crate) fn set_servers(&self, servers: &[SocketAddr]) -> Result<(), String> {
        let (reply, answer) = mpsc::channel();
        self.commands
            .send(Command::Servers(servers.to_vec(), reply))
            .map_err(|_| "the resolver thread is gone".to_owned())?;
        answer
            .recv()
            .map_err(|_| "the resolver thread is gone".to_owned())?
    }
}

fn serve(
    runtime: tokio::runtime::Runtime,
    mut resolver: TokioResolver,
    commands: mpsc::Receiver<Command>,
) {
    while let Ok(command) = commands.recv() {
        match command {
            Command::Lookup(names, reply) => {
                // Every lookup asks the servers: Sluice keeps its own schedule from the
                // TTLs, and a cached answer would hide a change until it expires.
                resolver.clear_cache();
                let lookups = runtime.block_on(lookup_all(&resolver, &names));
                let _ = reply.send(lookups);
            }
            Command::Servers(servers, reply) => {
                let _inside = runtime.enter();
                let built = build_resolver(&servers).map(|new| resolver = new);
                let _ = reply.send(built);
            }
        }
    }
}

/// Runs the lookups side by side: tasks spawned on the current-thread runtime run
/// while `block_on` waits for them.
async fn lookup_all(resolver: &TokioResolver, names: &[String]) -> Vec<Lookup> {
    let tasks: Vec<_> = names
        .iter()
        .map(|name| {
            let (resolver, name) = (resolver.clone(), name.clone());
            tokio::spawn(async move { lookup_one(&resolver, &name).await })
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(
            task.await
                .unwrap_or_else(|error| Err(format!("lookup task failed: {error}"))),
        );
    }
    results
}

async fn lookup_one(resolver: &TokioResolver, name: &str) -> Lookup {
    let lookup = resolver
        .lookup_ip(name)
        .await
        .map_err(|error| error.to_string())?;
    let mut addresses: Vec<IpAddr> = lookup.iter().collect();
    addresses.sort();
    addresses.dedup();
    if addresses.is_empty() {
        return Err(format!("no address for {name}"));
    }
    Ok(Answer {
        addresses,
        valid_until: lookup.valid_until(),
    })
}

fn build_resolver(servers: &[SocketAddr]) -> Result<TokioResolver, String> {
    let mut builder = if servers.is_empty() {
        TokioResolver::builder_tokio().map_err(|error| error.to_string())?
    } else {
        let group: Vec<NameServerConfig> = servers
            .iter()
            .map(|server| NameServerConfig::new(*server, Protocol::Udp))
            .collect();
        TokioResolver::builder_with_config(
            ResolverConfig::from_parts(None, Vec::new(), group),
            TokioConnectionProvider::default(),
        )
    };
    let options: &mut ResolverOpts = builder.options_mut();
    options.timeout = LOOKUP_TIMEOUT / 2;
    options.attempts = 2;
    Ok(builder.build())
}
