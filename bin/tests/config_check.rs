//! `sluice config check` run as a process, as an operator would.

use std::{path::Path, process::Command};

fn check(file: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["config", "check"])
        .arg(file)
        .output()
        .expect("the sluice binary runs")
}

#[test]
fn the_repository_config_is_valid() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sluice.toml");
    let output = check(&file);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    for expected in [
        "demo",
        "127.0.0.1:8081",
        "127.0.0.1:8082",
        "http 127.0.0.1:8080",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} missing from:\n{stdout}"
        );
    }
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn the_packaged_example_config_is_valid() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../os-build/sluice.example.toml");
    let text = std::fs::read_to_string(example).expect("example config");
    // Its access log folder is made by the package (systemd's LogsDirectory), not here.
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("access.log");
    let packaged = "\"/var/log/sluice/access.log\"";
    assert!(text.contains(packaged), "the example logs to {packaged}");
    let file = dir.path().join("sluice.toml");
    std::fs::write(
        &file,
        text.replace(packaged, &format!("{:?}", log.display().to_string())),
    )
    .expect("config file");
    let output = check(&file);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("postgres: tcp"), "{stdout}");
}

#[test]
fn an_invalid_config_fails_with_its_position() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "worker_count = 2\n\n[[listeners]]\naddress = \"127.0.0.1:8080\"\nfront_timeout = \"5 s\"\n",
    )
    .expect("config file");
    let output = check(&file);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!(
        "{}:5:17: listeners[0].front_timeout: invalid duration \"5 s\", \
         expected a whole number followed by ms, s, m or h, like \"250ms\", \"5s\", \"2m\" or \"1h\"\n",
        file.display()
    );
    assert_eq!(stderr, expected);
}

#[test]
fn a_missing_file_fails() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = check(&dir.path().join("none.toml"));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("none.toml: cannot read the configuration file"),
        "{stderr}"
    );
}

#[test]
fn version_names_the_binary() {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--version")
        .output()
        .expect("the sluice binary runs");
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), "sluice 0.1.0\n");
}

#[test]
fn help_lists_config_check() {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["config", "--help"])
        .output()
        .expect("the sluice binary runs");
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("check"), "{stdout}");
}

#[test]
fn an_access_log_that_cannot_be_opened_is_refused_by_check_and_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-such-folder/access.log");
    let file = dir.path().join("sluice.toml");
    std::fs::write(
        &file,
        format!(
            "command_socket = \"sluice.sock\"\naccess_log = {:?}\n\n[[listeners]]\naddress = \"127.0.0.1:1\"\n",
            missing.display().to_string()
        ),
    )
    .expect("config file");
    let expected = format!(
        "sluice.toml:2:14: access_log: cannot open {} for appending",
        missing.display()
    );
    let output = check(&file);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&expected), "{stderr}");

    let started = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["start", "-c"])
        .arg(&file)
        .current_dir(dir.path())
        .output()
        .expect("the sluice binary runs");
    let stderr = String::from_utf8_lossy(&started.stderr);
    assert_eq!(started.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(!dir.path().join("sluice.sock").exists(), "nothing started");
}
