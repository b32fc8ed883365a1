//! One validation for every source: the same bad value is refused with the same words from the
//! configuration file (`config check`, `start`), from `sluice ctl` and from a state file, and
//! a refused change changes nothing.

mod common;

use std::path::Path;
use std::process::Command;

use common::{free_port, sluice_bin, Sluice};

/// A valid file: an http cluster `web` and a tcp cluster `db`, each with a backend.
fn config(http: u16, tcp: u16) -> String {
    format!(
        "command_socket = \"sluice.sock\"\nworker_count = 1\naccess_log = \"off\"\n\
         shutdown_grace_period = \"2s\"\n\n\
         [[listeners]]\nprotocol = \"http\"\naddress = \"127.0.0.1:{http}\"\n\n\
         [[listeners]]\nprotocol = \"tcp\"\naddress = \"127.0.0.1:{tcp}\"\n\n\
         [clusters.web]\nprotocol = \"http\"\n\
         health_check = {{ uri = \"/health\", interval = \"5s\" }}\n\
         frontends = [ {{ address = \"127.0.0.1:{http}\", hostname = \"*\", path = \"/\" }} ]\n\
         backends = [ {{ address = \"127.0.0.1:9\", id = \"web-1\", weight = 100 }} ]\n\n\
         [clusters.db]\nprotocol = \"tcp\"\n\
         health_check = {{ interval = \"2s\" }}\n\
         frontends = [ {{ address = \"127.0.0.1:{tcp}\" }} ]\n\
         backends = [ {{ address = \"127.0.0.1:10\", id = \"db-1\" }} ]\n"
    )
}

/// `sluice config check` on `text`: its error message.
fn file_refusal(dir: &Path, text: &str) -> String {
    let path = dir.join("bad.toml");
    std::fs::write(&path, text).expect("write the config");
    let output = Command::new(sluice_bin())
        .args(["config", "check"])
        .arg(&path)
        .output()
        .expect("sluice runs");
    assert!(!output.status.success(), "accepted:\n{text}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A ctl command that must be refused: its message.
fn ctl_refusal(sluice: &Sluice, args: &[&str]) -> String {
    let output = sluice.ctl(args);
    assert!(!output.status.success(), "ctl {args:?} was accepted");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `state load` of the saved state with `from` replaced by `to`: its message.
fn state_refusal(sluice: &Sluice, dir: &Path, from: &str, to: &str) -> String {
    let saved = dir.join("saved.state");
    sluice.ctl_ok(&["state", "save", "-f", saved.to_str().expect("utf-8")]);
    let text = std::fs::read_to_string(&saved).expect("the saved state");
    assert!(
        text.contains(from),
        "{from} not in the saved state:\n{text}"
    );
    let edited = dir.join("edited.state");
    std::fs::write(&edited, text.replacen(from, to, 1)).expect("write the state");
    ctl_refusal(
        sluice,
        &["state", "load", "-f", edited.to_str().expect("utf-8")],
    )
}

fn assert_all_say(expected: &str, messages: &[(&str, String)]) {
    for (source, message) in messages {
        assert!(
            message.contains(expected),
            "{source} does not say {expected:?}: {message}"
        );
    }
}

#[test]
fn the_same_bad_value_is_refused_the_same_way_from_file_ctl_and_state_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (http, tcp) = (free_port(), free_port());
    let good = config(http, tcp);
    let sluice = Sluice::start(&good);
    let shown = || sluice.ctl_ok(&["--json", "cluster", "list"]);
    let before = shown();

    // A weight out of range.
    assert_all_say(
        "5000 is out of range, expected a whole number from 0 to 1000",
        &[
            (
                "file",
                file_refusal(dir.path(), &good.replace("weight = 100", "weight = 5000")),
            ),
            (
                "ctl backend add",
                ctl_refusal(
                    &sluice,
                    &[
                        "backend",
                        "add",
                        "--cluster",
                        "web",
                        "--address",
                        "127.0.0.1:11",
                        "--weight",
                        "5000",
                    ],
                ),
            ),
            (
                "ctl backend set",
                ctl_refusal(
                    &sluice,
                    &[
                        "backend",
                        "set",
                        "--cluster",
                        "web",
                        "--id",
                        "web-1",
                        "--weight",
                        "5000",
                    ],
                ),
            ),
            (
                "state file",
                state_refusal(&sluice, dir.path(), "\"weight\":100", "\"weight\":5000"),
            ),
        ],
    );

    // A health check interval of two days.
    assert_all_say(
        "duration \"48h\" is out of range, expected 1ms to 24h",
        &[
            (
                "file",
                file_refusal(
                    dir.path(),
                    &good.replace("interval = \"5s\"", "interval = \"48h\""),
                ),
            ),
            (
                "ctl",
                ctl_refusal(
                    &sluice,
                    &[
                        "health-check",
                        "set",
                        "--cluster",
                        "web",
                        "--uri",
                        "/health",
                        "--interval",
                        "48h",
                        "--timeout",
                        "1s",
                    ],
                ),
            ),
            (
                "state file",
                state_refusal(
                    &sluice,
                    dir.path(),
                    "\"interval_ms\":5000",
                    "\"interval_ms\":172800000",
                ),
            ),
        ],
    );

    // A connect timeout of 0.
    assert_all_say(
        "duration \"0ms\" is out of range, expected 1ms to 24h",
        &[
            (
                "file",
                file_refusal(
                    dir.path(),
                    &good.replacen(
                        "protocol = \"http\"\naddress",
                        "protocol = \"http\"\nconnect_timeout = \"0s\"\naddress",
                        1,
                    ),
                ),
            ),
            (
                "ctl",
                ctl_refusal(
                    &sluice,
                    &[
                        "listener",
                        "update",
                        "--protocol",
                        "http",
                        "--address",
                        &format!("127.0.0.1:{http}"),
                        "--connect-timeout",
                        "0s",
                    ],
                ),
            ),
            (
                "state file",
                state_refusal(
                    &sluice,
                    dir.path(),
                    "\"connect_timeout_ms\":3000",
                    "\"connect_timeout_ms\":0",
                ),
            ),
        ],
    );

    // An HTTP health check on a TCP cluster.
    assert_all_say(
        "an HTTP health check (uri \"/health\") cannot run on a tcp cluster",
        &[
            (
                "file",
                file_refusal(
                    dir.path(),
                    &good.replace("{ interval = \"2s\" }", "{ uri = \"/health\" }"),
                ),
            ),
            (
                "ctl",
                ctl_refusal(
                    &sluice,
                    &["health-check", "set", "--cluster", "db", "--uri", "/health"],
                ),
            ),
        ],
    );

    // A lower-case method and a cluster id that is not one word of ASCII.
    assert_all_say(
        "invalid method \"get\", expected an upper-case HTTP method",
        &[
            (
                "file",
                file_refusal(
                    dir.path(),
                    &good.replace("path = \"/\" }", "path = \"/\", method = \"get\" }"),
                ),
            ),
            (
                "ctl",
                ctl_refusal(
                    &sluice,
                    &[
                        "frontend",
                        "http",
                        "add",
                        "--listener",
                        &format!("127.0.0.1:{http}"),
                        "--cluster",
                        "web",
                        "--hostname",
                        "a.test",
                        "--method",
                        "get",
                    ],
                ),
            ),
        ],
    );
    assert_all_say(
        "invalid cluster name \"wéb\"",
        &[
            (
                "file",
                file_refusal(
                    dir.path(),
                    &good.replace("[clusters.web]", "[clusters.\"wéb\"]"),
                ),
            ),
            (
                "ctl",
                ctl_refusal(&sluice, &["cluster", "add", "--id", "wéb"]),
            ),
        ],
    );
    let long = "a".repeat(200);
    ctl_refusal(&sluice, &["cluster", "add", "--id", &long]);

    assert_eq!(shown(), before, "a refused change changed the state");
    // A TCP cluster's connect check is accepted from ctl too.
    sluice.ctl_ok(&["health-check", "set", "--cluster", "db", "--interval", "1s"]);
}
