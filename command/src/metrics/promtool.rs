//! Checking an exposition with Prometheus's own linter, `promtool check metrics` (Debian
//! package `prometheus`): what the tests of every crate use to prove `/metrics` is valid.

use std::io::Write;
use std::process::{Command, Stdio};

/// What `promtool check metrics` said of a text.
#[derive(Debug, PartialEq, Eq)]
pub enum PromtoolVerdict {
    /// It accepted the text.
    Accepted,
    /// It refused the text; its output says why.
    Refused(String),
    /// It could not be run (not installed); the reason.
    Unavailable(String),
}

/// Runs `promtool check metrics` on `text`.
pub fn promtool_check(text: &str) -> PromtoolVerdict {
    let spawned = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => return PromtoolVerdict::Unavailable(error.to_string()),
    };
    let fed = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(text.as_bytes()));
    let output = match child.wait_with_output() {
        Ok(output) => output,
        Err(error) => return PromtoolVerdict::Unavailable(error.to_string()),
    };
    if let Some(Err(error)) = fed {
        return PromtoolVerdict::Refused(format!("cannot feed promtool: {error}"));
    }
    if output.status.success() {
        PromtoolVerdict::Accepted
    } else {
        PromtoolVerdict::Refused(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// For tests: panics if promtool refuses `text`; prints a visible SKIPPED line and
/// returns false when promtool is not installed.
pub fn assert_promtool_accepts(what: &str, text: &str) -> bool {
    match promtool_check(text) {
        PromtoolVerdict::Accepted => true,
        PromtoolVerdict::Refused(why) => {
            panic!("promtool refused {what}:\n{why}\n--- output:\n{text}")
        }
        PromtoolVerdict::Unavailable(why) => {
            eprintln!(
                "SKIPPED promtool check of {what}: promtool not runnable ({why}); \
                 install the Debian package `prometheus`"
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_exposition_is_refused() {
        match promtool_check("sluice_x_total{broken 1\n") {
            PromtoolVerdict::Refused(_) => {}
            PromtoolVerdict::Unavailable(why) => {
                eprintln!("SKIPPED an_invalid_exposition_is_refused: promtool not runnable ({why})")
            }
            PromtoolVerdict::Accepted => panic!("promtool accepted a broken line"),
        }
    }
}
