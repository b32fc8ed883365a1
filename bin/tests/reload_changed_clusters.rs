//! A reload that compares only the clusters whose text changed leaves the state a
//! whole comparison leaves: what ctl changed meanwhile in other clusters is set
//! back, and the next ctl changes are still told which reload would undo them.

mod common;

use common::http::{http_config, mock, Route};
use common::Sluice;
use sluice_e2e::free_addr;

fn backends_of(sluice: &Sluice, cluster: &str) -> Vec<String> {
    let shown = sluice.ctl_json(&["cluster", "show", cluster]);
    shown["cluster"]["backends"]
        .as_array()
        .expect("backends")
        .iter()
        .filter_map(|b| b["address"].as_str().map(str::to_owned))
        .collect()
}

fn hostnames(sluice: &Sluice) -> Vec<String> {
    let listed = sluice.ctl_json(&["frontend", "list"]);
    let mut hosts: Vec<String> = listed["frontends"]
        .as_array()
        .expect("frontends")
        .iter()
        .filter_map(|f| f["hostname"].as_str().map(str::to_owned))
        .collect();
    hosts.sort();
    hosts
}

#[test]
fn a_reload_of_a_few_changed_clusters_sets_back_what_ctl_changed_elsewhere() {
    let web = mock("web");
    let api = mock("api");
    let listener = free_addr();
    let config = |api_host: &str, with_new: bool| {
        let mut routes = vec![
            Route::new("web", "web.test", &[web.addr()]),
            Route::new("api", api_host, &[api.addr()]),
        ];
        if with_new {
            routes.push(Route::new("new", "new.test", &[api.addr()]));
        }
        http_config(1, listener, &routes)
    };
    let sluice = Sluice::start(&config("api.test", false));
    let write = |text: String| std::fs::write(sluice.config_path(), text).expect("written");

    // `api` changes and `new` comes; `web` is as it was.
    write(config("api2.test", true));
    sluice.ctl_ok(&["reload"]);
    assert_eq!(hostnames(&sluice), ["api2.test", "new.test", "web.test"]);
    assert_eq!(backends_of(&sluice, "new"), [api.addr().to_string()]);
    // What the file now says is known to the next ctl changes.
    let removed = sluice.ctl_ok(&[
        "backend",
        "remove",
        "--cluster",
        "new",
        "--address",
        &api.addr().to_string(),
    ]);
    assert!(
        removed.contains("still in sluice.toml: a reload will add it back"),
        "{removed}"
    );
    let spare = free_addr().to_string();
    let added = sluice.ctl_ok(&["backend", "add", "--cluster", "web", "--address", &spare]);
    assert!(
        added.contains("not in sluice.toml: a reload will remove it"),
        "{added}"
    );

    // Only `new` changes in the file (it goes), but ctl changed `web` and `new`:
    // the reload sets both back.
    write(config("api2.test", false));
    sluice.ctl_ok(&["reload"]);
    assert_eq!(hostnames(&sluice), ["api2.test", "web.test"]);
    assert_eq!(backends_of(&sluice, "web"), [web.addr().to_string()]);

    // And again with nothing changed but by ctl.
    sluice.ctl_ok(&["backend", "add", "--cluster", "web", "--address", &spare]);
    sluice.ctl_ok(&["reload"]);
    assert_eq!(backends_of(&sluice, "web"), [web.addr().to_string()]);
    let again = sluice.ctl_ok(&["backend", "add", "--cluster", "web", "--address", &spare]);
    assert!(
        again.contains("not in sluice.toml: a reload will remove it"),
        "{again}"
    );
}
