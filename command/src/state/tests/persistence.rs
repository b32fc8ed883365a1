//! Saved states: round trips, and errors that name the line.

use super::*;

#[test]
fn an_empty_saved_state_is_an_error() {
    let loaded = ConfigState::load(&b""[..]);
    assert!(
        matches!(loaded, Err(StateError::EmptyStateFile)),
        "{loaded:?}"
    );
    let loaded = ConfigState::load(&b"\n\n"[..]);
    assert!(
        matches!(loaded, Err(StateError::EmptyStateFile)),
        "{loaded:?}"
    );
}

#[test]
fn save_then_load_round_trips() {
    let mut state = base();
    state
        .apply(&set_health_check("web", Some(health_check())))
        .expect("health check");
    let mut saved = Vec::new();
    state.save(&mut saved).expect("save");
    let text = String::from_utf8(saved.clone()).expect("utf-8");
    assert_eq!(text.lines().count(), state.generate_requests().len());
    assert_eq!(ConfigState::load(saved.as_slice()).expect("load"), state);
}

#[test]
fn load_errors_name_the_line() {
    let mut saved = Vec::new();
    base().save(&mut saved).expect("save");
    let mut lines: Vec<String> = String::from_utf8(saved)
        .expect("utf-8")
        .lines()
        .map(str::to_owned)
        .collect();

    let mut garbled = lines.clone();
    garbled[1] = "{not json".to_owned();
    let error = ConfigState::load(garbled.join("\n").as_bytes()).expect_err("garbled");
    assert!(
        matches!(error, StateError::Parse { line: 2, .. }),
        "{error}"
    );

    // A backend before its cluster: line 1 is now the backend.
    let backend_line = lines.remove(4);
    lines.insert(0, backend_line);
    let error = ConfigState::load(lines.join("\n").as_bytes()).expect_err("out of order");
    assert!(
        error
            .to_string()
            .starts_with("saved state, line 1: cluster"),
        "{error}"
    );
}
