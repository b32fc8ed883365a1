//! Drives one `sluice worker` process directly over its channel, without a
//! main process: the way to test the worker's proxying in isolation.
//!
//! The worker is started as `sluice worker --id N --channel-fd 3 [args]`
//! with one end of a `UnixStream::pair()` as its descriptor 3; it reads
//! `WorkerRequest` frames and writes `WorkerMessage` frames (responses and
//! events). Events that arrive while waiting for a response are queued for
//! [`WorkerHarness::wait_event`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use sluice_command::channel::{Channel, ChannelError, CONTROL_MAX_FRAME_SIZE};
use sluice_command::proto::{
    self, response_content::ContentType, worker_message::MessageType, ListenerProtocol,
};

use crate::binary::sluice_binary;
use crate::listening::HarnessSockets;
use crate::process::{inherit_fd, ChildGuard, ProcessError};
use crate::requests;
use crate::wait::{port_accepts, wait_for_port};

/// Descriptor number of the channel in the worker.
const CHANNEL_FD: i32 = 3;
/// How long a request may wait for its response.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// How long a freshly activated listener may take to accept.
const LISTEN_DEADLINE: Duration = Duration::from_secs(10);

/// The channel as the harness (in the main process's seat) sees it.
pub type WorkerChannel = Channel<proto::WorkerRequest, proto::WorkerMessage>;

/// Errors of driving a worker.
#[derive(Debug, thiserror::Error)]
pub enum WorkerHarnessError {
    /// The socket pair could not be created.
    #[error("cannot create the channel's socket pair: {0}")]
    SocketPair(#[source] std::io::Error),
    /// The process could not be started.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// The channel failed (closed, garbled frame…).
    #[error("worker channel: {0}")]
    Channel(#[from] ChannelError),
    /// No response came in time.
    #[error("no response to request {id} within {deadline:?}")]
    Timeout {
        /// The request id.
        id: String,
        /// How long we waited.
        deadline: Duration,
    },
}

/// A running worker process and the main-process end of its channel; the
/// worker is killed when this is dropped.
pub struct WorkerHarness {
    id: u32,
    channel: WorkerChannel,
    child: ChildGuard,
    next_request: u64,
    sockets: HarnessSockets,
    pending_events: VecDeque<proto::Event>,
    events_seen: Vec<proto::Event>,
}

impl WorkerHarness {
    /// Starts worker `id` with default settings; panics (with the worker's
    /// logs) if it cannot.
    pub fn start(id: u32) -> Self {
        Self::start_with_args(id, &[])
    }

    /// Starts worker `id` with extra arguments, e.g.
    /// `["--max-connections", "10"]`; panics if it cannot.
    pub fn start_with_args(id: u32, args: &[&str]) -> Self {
        Self::try_start(id, args).unwrap_or_else(|e| panic!("cannot start worker {id}: {e}"))
    }

    /// Starts worker `id` with extra arguments.
    pub fn try_start(id: u32, args: &[&str]) -> Result<Self, WorkerHarnessError> {
        Self::try_start_program(&sluice_binary(), id, args)
    }

    /// Starts worker `id` from the `sluice` binary at `program` (e.g. the
    /// release build for a heavy test), with extra arguments.
    pub fn try_start_program(
        program: &Path,
        id: u32,
        args: &[&str],
    ) -> Result<Self, WorkerHarnessError> {
        let (ours, theirs) = UnixStream::pair().map_err(WorkerHarnessError::SocketPair)?;
        let mut command = Command::new(program);
        command
            .arg("worker")
            .arg("--id")
            .arg(id.to_string())
            .arg("--channel-fd")
            .arg(CHANNEL_FD.to_string())
            .args(args);
        inherit_fd(&mut command, &theirs, CHANNEL_FD);
        let child = ChildGuard::spawn(command, &format!("worker-{id}"))?;
        // Our copy of the worker's end must go, or we would never see EOF
        // when the worker dies.
        drop(theirs);
        Ok(Self::from_parts(
            id,
            Channel::new(ours).with_max_frame_size(CONTROL_MAX_FRAME_SIZE),
            child,
        ))
    }

    /// Wraps a worker started some other way (or a stand-in process with a
    /// fake worker on the channel's other end, to test this harness).
    pub fn from_parts(id: u32, channel: WorkerChannel, child: ChildGuard) -> Self {
        Self {
            id,
            channel,
            child,
            next_request: 0,
            sockets: HarnessSockets::default(),
            pending_events: VecDeque::new(),
            events_seen: Vec::new(),
        }
    }

    /// The worker id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The worker process (pid, signals, logs, memory, CPU).
    pub fn process(&self) -> &ChildGuard {
        &self.child
    }

    /// The worker process, mutably (to wait for its exit, kill it).
    pub fn process_mut(&mut self) -> &mut ChildGuard {
        &mut self.child
    }

    /// The channel, for tests of the protocol itself (raw frames).
    pub fn channel_mut(&mut self) -> &mut WorkerChannel {
        &mut self.channel
    }

    /// Sends `request` and returns its response; panics (with the worker's
    /// logs) if none comes within [`REQUEST_DEADLINE`].
    pub fn request(&mut self, request: &proto::Request) -> proto::WorkerResponse {
        self.try_request(request, REQUEST_DEADLINE)
            .unwrap_or_else(|e| {
                panic!(
                    "request {request:?} to worker {}: {e}\n{}",
                    self.id,
                    self.child.logs()
                )
            })
    }

    /// Sends `request` with a fresh id and reads messages until the response
    /// with that id arrives, queueing events seen meanwhile.
    pub fn try_request(
        &mut self,
        request: &proto::Request,
        deadline: Duration,
    ) -> Result<proto::WorkerResponse, WorkerHarnessError> {
        self.next_request += 1;
        let id = format!("e2e-{}", self.next_request);
        // Listeners added and activated are bound and listening before the worker hears.
        let handed = self.sockets.prepare(request);
        let borrowed: Vec<_> = handed.iter().map(AsFd::as_fd).collect();
        self.channel.write_message_with_fds(
            &proto::WorkerRequest {
                id: id.clone(),
                content: request.clone(),
            },
            &borrowed,
        )?;
        let end = Instant::now() + deadline;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(WorkerHarnessError::Timeout { id, deadline });
            }
            match self.read_message(left)? {
                Some(MessageType::Response(response)) if response.id == id => return Ok(response),
                Some(MessageType::Response(other)) => {
                    log::warn!(
                        "worker {}: response to an unknown request {other:?}",
                        self.id
                    )
                }
                Some(MessageType::Event(event)) => self.queue_event(event),
                None => {}
            }
        }
    }

    /// Sends `request` and panics unless the answer is OK; returns it.
    pub fn expect_ok(&mut self, request: &proto::Request) -> proto::WorkerResponse {
        let response = self.request(request);
        if response.status != proto::ResponseStatus::Ok as i32 {
            panic!(
                "worker {} refused {request:?}: {response:?}\n{}",
                self.id,
                self.child.logs()
            );
        }
        response
    }

    /// Sends `request`, panics unless the answer is a failure; returns the
    /// failure message.
    pub fn expect_failure(&mut self, request: &proto::Request) -> String {
        let response = self.request(request);
        if response.status != proto::ResponseStatus::Failure as i32 {
            panic!(
                "worker {} accepted {request:?}, expected a failure: {response:?}",
                self.id
            );
        }
        response.message
    }

    /// The first not yet consumed event of `kind`, waiting for it up to
    /// `deadline`; panics if none comes.
    pub fn wait_event(&mut self, kind: proto::EventKind, deadline: Duration) -> proto::Event {
        let end = Instant::now() + deadline;
        loop {
            if let Some(at) = self
                .pending_events
                .iter()
                .position(|e| e.kind == kind as i32)
            {
                if let Some(event) = self.pending_events.remove(at) {
                    return event;
                }
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "timed out after {:.1}s waiting for event {kind:?} from worker {}; \
                     events seen: {:?}",
                    deadline.as_secs_f64(),
                    self.id,
                    self.events_seen
                );
            }
            match self.read_message(left) {
                Ok(Some(MessageType::Event(event))) => self.queue_event(event),
                Ok(Some(MessageType::Response(response))) => {
                    log::warn!("worker {}: unexpected response {response:?}", self.id)
                }
                Ok(None) => {}
                Err(e) => panic!(
                    "worker {} channel failed while waiting for {kind:?}: {e}\n{}",
                    self.id,
                    self.child.logs()
                ),
            }
        }
    }

    /// Every event received so far, in order (consumed or not).
    pub fn events_seen(&self) -> &[proto::Event] {
        &self.events_seen
    }

    /// Reads events already sent, for up to `duration`, without waiting for
    /// any in particular (to assert that something did NOT happen).
    pub fn collect_events_for(&mut self, duration: Duration) -> Result<(), WorkerHarnessError> {
        let end = Instant::now() + duration;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            if let Some(MessageType::Event(event)) = self.read_message(left)? {
                self.queue_event(event);
            }
        }
    }

    /// Configures a TCP proxy in one go: a cluster `cluster_id` with one
    /// backend per address, a listener on `listen` sending to it, activated;
    /// waits until the listener accepts.
    pub fn setup_tcp_proxy(
        &mut self,
        listen: SocketAddr,
        cluster_id: &str,
        backends: &[SocketAddr],
    ) {
        self.expect_ok(&requests::add_cluster(cluster_id, ListenerProtocol::Tcp));
        for backend in backends {
            self.expect_ok(&requests::add_backend(cluster_id, *backend));
        }
        self.expect_ok(&requests::add_tcp_listener(listen));
        self.expect_ok(&requests::add_tcp_frontend(listen, cluster_id));
        self.expect_ok(&requests::activate(listen, ListenerProtocol::Tcp));
        self.wait_for_listener(listen);
    }

    /// Configures an HTTP proxy in one go: a cluster with one backend per
    /// address, a listener on `listen` routing `hostname` (every path) to
    /// it, activated; waits until the listener accepts.
    pub fn setup_http_proxy(
        &mut self,
        listen: SocketAddr,
        hostname: &str,
        cluster_id: &str,
        backends: &[SocketAddr],
    ) {
        self.expect_ok(&requests::add_cluster(cluster_id, ListenerProtocol::Http));
        for backend in backends {
            self.expect_ok(&requests::add_backend(cluster_id, *backend));
        }
        self.expect_ok(&requests::add_http_listener(listen));
        self.expect_ok(&requests::add_http_frontend(
            listen, hostname, "/", cluster_id,
        ));
        self.expect_ok(&requests::activate(listen, ListenerProtocol::Http));
        self.wait_for_listener(listen);
    }

    /// The worker's open sessions, as its answer to `QueryStatus` says;
    /// panics if the answer has no worker status.
    pub fn sessions(&mut self) -> u64 {
        let response = self.expect_ok(&requests::query_status());
        match response.content.and_then(|c| c.content_type) {
            Some(ContentType::Workers(statuses)) => match statuses.workers.as_slice() {
                [status] => status.sessions,
                other => panic!("worker {}: expected one status, got {other:?}", self.id),
            },
            other => panic!("worker {}: QueryStatus answered {other:?}", self.id),
        }
    }

    /// Waits until `addr` accepts, failing with the worker's logs if the
    /// worker died meanwhile. The probe connection is closed at once.
    pub fn wait_for_listener(&mut self, addr: SocketAddr) {
        if self.child.has_exited() {
            panic!("worker {} exited\n{}", self.id, self.child.logs());
        }
        if !port_accepts(addr) {
            wait_for_port(addr, LISTEN_DEADLINE);
        }
    }

    fn read_message(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<MessageType>, WorkerHarnessError> {
        match self.channel.read_message_timeout(timeout) {
            Ok(message) => Ok(message.message_type),
            Err(ChannelError::Timeout) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn queue_event(&mut self, event: proto::Event) {
        self.events_seen.push(event.clone());
        self.pending_events.push_back(event);
    }
}
