//! A ctl change that the next reload of the file would undo says so when it is made.

mod common;

use common::http::{http_config, mock, Route};
use common::Sluice;
use sluice_e2e::free_addr;

#[test]
fn a_change_the_file_does_not_have_is_announced_and_a_reload_undoes_it() {
    let backend = mock("web1");
    let route = Route::new("api", "api.test", &[backend.addr()]);
    let sluice = Sluice::start(&http_config(1, free_addr(), &[route]));

    let spare = free_addr().to_string();
    let added = sluice.ctl_ok(&["backend", "add", "--cluster", "api", "--address", &spare]);
    assert!(
        added.contains(&format!("added backend api/{spare}"))
            && added.contains("not in sluice.toml: a reload will remove it"),
        "{added}"
    );
    let removed = sluice.ctl_ok(&[
        "backend",
        "remove",
        "--cluster",
        "api",
        "--address",
        &backend.addr().to_string(),
    ]);
    assert!(
        removed.contains("still in sluice.toml: a reload will add it back"),
        "{removed}"
    );

    // The reload does what was announced.
    sluice.ctl_ok(&["reload"]);
    let shown = sluice.ctl_json(&["cluster", "show", "api"]);
    let addresses: Vec<&str> = shown["cluster"]["backends"]
        .as_array()
        .expect("backends")
        .iter()
        .filter_map(|b| b["address"].as_str())
        .collect();
    assert_eq!(addresses, [backend.addr().to_string()], "{shown:#}");

    // A change the file agrees with is not announced.
    sluice.ctl_ok(&["backend", "add", "--cluster", "api", "--address", &spare]);
    let again = sluice.ctl_ok(&["backend", "remove", "--cluster", "api", "--address", &spare]);
    assert!(!again.contains("reload"), "{again}");
}
