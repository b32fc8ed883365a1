//! `os-build/sluice.service`: systemd's own checker accepts it, and it runs the
//! binary the way the rest of Sluice expects (notify, config check first, reload
//! through ctl, soft stop to the main process only, hardening).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The unit file as shipped.
fn unit_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../os-build/sluice.service")
}

fn unit() -> String {
    std::fs::read_to_string(unit_path()).expect("os-build/sluice.service")
}

/// The values of `key=` in the unit, in order.
fn values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

/// The single value of `key=`; panics when it is missing or repeated.
fn value<'a>(unit: &'a str, key: &str) -> &'a str {
    match values(unit, key)[..] {
        [value] => value,
        ref other => panic!("{key}= must appear once in sluice.service, found {other:?}"),
    }
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    // The unit runs /usr/bin/sluice, which verify wants to find executable: the
    // copy checked here runs the binary under test instead.
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("sluice.service");
    std::fs::write(
        &copy,
        unit().replace("/usr/bin/sluice", common::sluice_bin()),
    )
    .expect("write the unit copy");
    let output = match Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
    {
        Ok(output) => output,
        Err(error) => {
            panic!("cannot run systemd-analyze ({error}): install the Debian package `systemd`")
        }
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Unknown keys and bad values are only warnings, with exit status 0.
    assert!(
        output.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {}\n{stderr}",
        output.status
    );
}

#[test]
fn the_unit_checks_the_config_first_and_reloads_through_ctl() {
    let unit = unit();
    assert_eq!(value(&unit, "Type"), "notify");
    assert_eq!(value(&unit, "NotifyAccess"), "main");
    assert_eq!(
        value(&unit, "ExecStartPre"),
        "/usr/bin/sluice config check /etc/sluice/sluice.toml"
    );
    assert_eq!(
        value(&unit, "ExecStart"),
        "/usr/bin/sluice start -c /etc/sluice/sluice.toml"
    );
    assert_eq!(
        value(&unit, "ExecReload"),
        "/usr/bin/sluice ctl -s /run/sluice/sluice.sock reload"
    );
}

#[test]
fn a_stop_is_soft_and_reaches_the_main_process_only() {
    let unit = unit();
    assert_eq!(value(&unit, "KillSignal"), "SIGTERM");
    // SIGTERM to every worker as well would end their sessions at once.
    assert_eq!(value(&unit, "KillMode"), "mixed");
    let stop_timeout: u64 = value(&unit, "TimeoutStopSec").parse().expect("seconds");
    assert!(
        stop_timeout > 30,
        "TimeoutStopSec={stop_timeout} must exceed the default shutdown_grace_period (30 s)"
    );
}

#[test]
fn the_unit_runs_unprivileged_and_hardened() {
    let unit = unit();
    assert_eq!(value(&unit, "User"), "sluice");
    for (key, expected) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"),
        ("AmbientCapabilities", "CAP_NET_BIND_SERVICE"),
        // Writable under ProtectSystem=strict: the command socket's and the logs' folders.
        ("RuntimeDirectory", "sluice"),
        ("LogsDirectory", "sluice"),
    ] {
        assert_eq!(value(&unit, key), expected, "{key}");
    }
    let files: u64 = value(&unit, "LimitNOFILE").parse().expect("a number");
    assert!(files >= 65_536, "LimitNOFILE={files}");
}
