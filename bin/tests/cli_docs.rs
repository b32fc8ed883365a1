//! `sluice completions SHELL` and `sluice man` run and describe the real
//! command line: its subcommands, nested ones included, and not the hidden
//! `worker`.

mod common;

use std::process::{Command, Output};

fn sluice(args: &[&str]) -> Output {
    let output = Command::new(common::sluice_bin())
        .args(args)
        .output()
        .expect("run sluice");
    assert!(
        output.status.success(),
        "sluice {args:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(args: &[&str]) -> String {
    String::from_utf8(sluice(args).stdout).expect("utf-8 output")
}

#[test]
fn completions_cover_the_subcommands_in_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout(&["completions", shell]);
        for subcommand in [
            "start",
            "ctl",
            "config",
            "completions",
            "man",
            "reload",
            "backend",
        ] {
            assert!(
                script.contains(subcommand),
                "{shell}: `{subcommand}` missing"
            );
        }
        assert!(
            !script.contains("sluice__subcmd__worker")
                && !script.contains("\"worker\"")
                && !script.contains("(worker)"),
            "{shell}: the hidden `worker` subcommand is offered"
        );
    }
}

#[test]
fn the_bash_completion_script_loads() {
    let script = stdout(&["completions", "bash"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sluice.bash");
    std::fs::write(&path, script).expect("write the script");
    let output = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p sluice", path.display()))
        .output()
        .expect("run bash");
    let registered = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && registered.contains("-F _sluice sluice"),
        "{registered}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn an_unknown_shell_is_refused() {
    let output = Command::new(common::sluice_bin())
        .args(["completions", "tcsh"])
        .output()
        .expect("run sluice");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("bash"));
}

#[test]
fn the_manual_page_names_the_subcommands_and_the_signals() {
    let page = stdout(&["man"]);
    assert!(page.contains(".TH sluice 1"), "{page}");
    for expected in [
        "sluice\\-start(1)",
        "sluice\\-ctl(1)",
        "sluice\\-config(1)",
        ".SH SIGNALS",
        "SIGHUP",
        "/etc/sluice/sluice.toml",
    ] {
        assert!(page.contains(expected), "`{expected}` missing:\n{page}");
    }
    assert!(!page.contains("sluice\\-worker"), "{page}");
}

#[test]
fn man_dir_writes_a_page_per_subcommand() {
    let dir = tempfile::tempdir().expect("temp dir");
    sluice(&["man", "--dir", dir.path().to_str().expect("utf-8 path")]);
    for page in [
        "sluice.1",
        "sluice-start.1",
        "sluice-ctl.1",
        "sluice-ctl-reload.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(page))
            .unwrap_or_else(|error| panic!("{page}: {error}"));
        assert!(text.contains(".TH"), "{page} is not a manual page");
    }
    assert!(!dir.path().join("sluice-worker.1").exists());
}
