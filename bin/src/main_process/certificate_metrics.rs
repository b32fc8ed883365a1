//! `sluice_certificate_expiry_timestamp_seconds` on main's `/metrics`: the not-after date
//! of every certificate of the state, one sample per name it answers, so that an alert
//! can fire before a certificate expires (see the README's alert rule).

use std::fmt::Write;

use sluice_command::state::ConfigState;

/// The metric's name.
pub(crate) const CERTIFICATE_EXPIRY: &str = "sluice_certificate_expiry_timestamp_seconds";

/// Appends the family to a Prometheus text body (nothing without certificates).
pub(crate) fn render(state: &ConfigState, out: &mut String) {
    if state.certificates().is_empty() {
        return;
    }
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "# HELP {CERTIFICATE_EXPIRY} Not-after date of a certificate, in seconds since the Unix epoch."
    );
    let _ = writeln!(out, "# TYPE {CERTIFICATE_EXPIRY} gauge");
    for stored in state.certificates().values() {
        for name in &stored.pem.names {
            let _ = writeln!(
                out,
                "{CERTIFICATE_EXPIRY}{{fingerprint=\"{}\",name=\"{}\"}} {}",
                stored.info.fingerprint,
                escaped(name),
                stored.info.not_after_unix
            );
        }
    }
}

/// A label value as the exposition format wants it.
fn escaped(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_command::proto::{self, request::RequestType, Request};

    #[test]
    fn one_sample_per_certificate_name_accepted_by_promtool() {
        let mut state = ConfigState::new();
        let mut empty = String::new();
        render(&state, &mut empty);
        assert!(empty.is_empty());
        let certificate = super::super::certificates::test_certificate(&["a.test", "*.b.test"]);
        let fingerprint =
            sluice_command::certificate::fingerprint_of_pem(&certificate.certificate).unwrap();
        let not_after = sluice_command::certificate::inspect(&certificate)
            .unwrap()
            .not_after_unix;
        state
            .apply(&Request {
                request_type: Some(RequestType::AddCertificate(proto::AddCertificate {
                    certificate,
                })),
            })
            .expect("added");
        let mut text = String::new();
        render(&state, &mut text);
        for name in ["a.test", "*.b.test"] {
            let sample = format!(
                "{CERTIFICATE_EXPIRY}{{fingerprint=\"{fingerprint}\",name=\"{name}\"}} {not_after}\n"
            );
            assert!(text.contains(&sample), "{sample:?} missing from:\n{text}");
        }
        sluice_command::metrics::promtool::assert_promtool_accepts("certificate expiry", &text);
    }
}
