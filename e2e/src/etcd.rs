//! A real etcd server for tests (Debian's `etcd-server`, with `etcdctl` from
//! `etcd-client`): one member on 127.0.0.1 with free ports and a temporary
//! data folder, which can be stopped and started again on the same ports and
//! data, and written to with `etcdctl`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::ports::free_port;
use crate::process::ChildGuard;
use crate::wait::{wait_for_port, wait_for_port_closed, wait_until};

/// Most operations one transaction may hold: enough for the tests that write a
/// thousand clusters at once (etcd's default is 128).
const MAX_TXN_OPS: u32 = 5_000;

/// A running (or stopped) single-member etcd; killed on drop.
pub struct Etcd {
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
    child: Option<ChildGuard>,
}

impl Etcd {
    /// Starts etcd and waits until it answers. Panics, saying what to install, when the
    /// `etcd` binary is missing.
    pub fn start() -> Etcd {
        let dir = tempfile::Builder::new()
            .prefix("sluice-e2e-etcd-")
            .tempdir()
            .expect("a temp folder for etcd");
        let mut etcd = Etcd {
            dir,
            client_port: free_port(),
            peer_port: free_port(),
            child: None,
        };
        etcd.resume();
        etcd
    }

    /// `http://127.0.0.1:PORT`, for `[etcd] endpoints`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn client_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.client_port))
    }

    /// Kills etcd (as a crash or a network cut would); its data stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill();
        }
        wait_for_port_closed(self.client_addr(), Duration::from_secs(10));
    }

    /// Starts etcd again on the same ports and data, and waits until it answers.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "etcd is already running");
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut command = Command::new("etcd");
        command
            .arg("--name=sluice-test")
            .arg(format!(
                "--data-dir={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("--listen-client-urls={}", self.endpoint()))
            .arg(format!("--advertise-client-urls={}", self.endpoint()))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=sluice-test={peer}"))
            .arg(format!("--max-txn-ops={MAX_TXN_OPS}"))
            .arg("--logger=zap")
            .arg("--log-level=warn")
            // The data of one test is thrown away: no need to wait for the disk.
            .arg("--unsafe-no-fsync");
        let child =
            ChildGuard::spawn_in(command, "etcd", self.dir.path()).unwrap_or_else(|error| {
                panic!("cannot start etcd ({error}); install Debian's etcd-server and etcd-client")
            });
        self.child = Some(child);
        wait_for_port(self.client_addr(), Duration::from_secs(20));
        wait_until("etcd to answer", Duration::from_secs(20), || {
            self.etcdctl(&["endpoint", "health"]).status.success()
        });
    }

    /// Runs `etcdctl --endpoints=… args…`.
    pub fn etcdctl(&self, args: &[&str]) -> Output {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint()))
            .arg("--command-timeout=10s")
            .args(args)
            .output()
            .unwrap_or_else(|error| {
                panic!("cannot run etcdctl ({error}); install Debian's etcd-client")
            })
    }

    fn etcdctl_ok(&self, args: &[&str]) -> String {
        let output = self.etcdctl(args);
        assert!(
            output.status.success(),
            "etcdctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `etcdctl put KEY VALUE`.
    pub fn put(&self, key: &str, value: &str) {
        self.etcdctl_ok(&["put", "--", key, value]);
    }

    /// `etcdctl del KEY`.
    pub fn delete(&self, key: &str) {
        self.etcdctl_ok(&["del", "--", key]);
    }

    /// The value of `key`, if it is set.
    pub fn get(&self, key: &str) -> Option<String> {
        let output = self.etcdctl_ok(&["get", "--print-value-only", "--", key]);
        (!output.is_empty()).then(|| output.strip_suffix('\n').unwrap_or(&output).to_owned())
    }

    /// How many keys are under `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.etcdctl_ok(&["get", "--prefix", "--keys-only", "--", prefix])
            .lines()
            .filter(|line| !line.is_empty())
            .count()
    }

    /// The folder etcd's logs are in.
    pub fn log_dir(&self) -> &Path {
        self.dir.path()
    }

    /// What etcd logged.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.stderr")).unwrap_or_default()
    }
}
