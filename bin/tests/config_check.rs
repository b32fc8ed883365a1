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
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../os-build/sluice.example.toml");
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
