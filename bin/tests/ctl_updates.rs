//! Changes that change only what they name: `cluster add` on an existing id is refused and
//! changes nothing; `cluster update` and `listener update` change their settings in place,
//! keeping backends, health check, metrics, connections and the listening socket.

mod common;

use std::net::SocketAddr;

use common::http::{mock, served_by};
use common::{free_port, Sluice};
use sluice_e2e::HttpConn;

const HOST: &str = "web.test";

fn config(listener: SocketAddr, backend: SocketAddr) -> String {
    format!(
        "command_socket = \"sluice.sock\"\nworker_count = 2\naccess_log = \"off\"\n\
         shutdown_grace_period = \"2s\"\n\n\
         [[listeners]]\nprotocol = \"http\"\naddress = \"{listener}\"\nconnect_timeout = \"3s\"\n\n\
         [clusters.web]\nprotocol = \"http\"\nsticky_session = true\nsticky_cookie = \"WEBID\"\n\
         max_connect_retries = 2\n\
         health_check = {{ uri = \"/health\", interval = \"1s\" }}\n\
         frontends = [ {{ address = \"{listener}\", hostname = \"{HOST}\", path = \"/\" }} ]\n\
         backends = [ {{ address = \"{backend}\", id = \"web-1\" }} ]\n"
    )
}

/// The cluster as `ctl --json cluster show` describes it.
fn cluster(sluice: &Sluice) -> serde_json::Value {
    let shown = sluice.ctl_json(&["cluster", "show", "web"]);
    let cluster = shown["cluster"].clone();
    serde_json::json!({ "backends": cluster["backends"].clone(), "cluster": cluster })
}

/// Requests counted for the backend by every worker.
fn backend_requests(sluice: &Sluice) -> u64 {
    let metrics = sluice.ctl_json(&["metrics", "--cluster", "web", "--backend", "web-1"]);
    metrics["clusters"]["web"]["backends"]["web-1"]["requests"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn cluster_add_on_an_existing_id_is_refused_and_update_changes_only_what_it_names() {
    let backend = mock("web-1");
    let listener: SocketAddr = format!("127.0.0.1:{}", free_port())
        .parse()
        .expect("address");
    let sluice = Sluice::start(&config(listener, backend.addr()));
    let mut client = HttpConn::connect(listener).expect("connect");
    let response = client.get(HOST, "/").expect("a response");
    assert!(served_by(&response, "web-1"), "{response:?}");
    let before = cluster(&sluice);

    let refused = sluice.ctl(&["cluster", "add", "--id", "web"]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("already exists")
            && message.contains("sluice ctl cluster update --id web"),
        "{message}"
    );
    assert_eq!(
        cluster(&sluice),
        before,
        "a refused add changed the cluster"
    );

    let counted = backend_requests(&sluice);
    assert!(counted >= 1);
    sluice.ctl_ok(&["cluster", "update", "--id", "web", "--lb", "least_loaded"]);
    let after = cluster(&sluice);
    assert_ne!(
        after["cluster"]["load_balancing"],
        before["cluster"]["load_balancing"]
    );
    for kept in [
        "health_check",
        "sticky_cookie_name",
        "max_connect_retries",
        "sticky_session",
    ] {
        assert_eq!(
            after["cluster"][kept], before["cluster"][kept],
            "{kept} changed"
        );
    }
    assert_eq!(after["backends"], before["backends"], "backends changed");
    assert!(backend_requests(&sluice) >= counted, "metrics were reset");
    let response = client
        .get(HOST, "/")
        .expect("the same connection still works");
    assert!(served_by(&response, "web-1"), "{response:?}");

    sluice.ctl_ok(&["cluster", "update", "--id", "web", "--no-sticky"]);
    let after = cluster(&sluice);
    assert_eq!(after["cluster"]["sticky_session"], false);
    assert_eq!(
        after["cluster"]["sticky_cookie_name"],
        before["cluster"]["sticky_cookie_name"]
    );
    assert!(!sluice
        .ctl(&["cluster", "update", "--id", "nosuch", "--sticky"])
        .status
        .success());
}

#[test]
fn listener_update_changes_its_settings_and_keeps_its_socket() {
    let backend = mock("web-1");
    let listener: SocketAddr = format!("127.0.0.1:{}", free_port())
        .parse()
        .expect("address");
    let sluice = Sluice::start(&config(listener, backend.addr()));
    let mut client = HttpConn::connect(listener).expect("connect");
    assert_eq!(client.get(HOST, "/").expect("a response").status, 200);

    let address = listener.to_string();
    sluice.ctl_ok(&[
        "listener",
        "update",
        "--protocol",
        "http",
        "--address",
        &address,
        "--connect-timeout",
        "1s",
        "--max-request-body",
        "1k",
    ]);
    let listed = sluice.ctl_json(&["listener", "list"]).to_string();
    assert!(listed.contains("\"connect_ms\":1000"), "{listed}");
    assert!(
        listed.contains("\"front_ms\":60000"),
        "front timeout kept: {listed}"
    );
    assert!(listed.contains("\"max_request_body\":1024"), "{listed}");
    let response = client
        .get(HOST, "/")
        .expect("the connection opened before still works");
    assert_eq!(response.status, 200);
    let body = "x".repeat(2048);
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let response = client.request(request.as_bytes()).expect("an answer");
    assert_eq!(response.status, 413, "the new body limit applies at once");
    let refused = sluice.ctl(&[
        "listener",
        "update",
        "--protocol",
        "http",
        "--address",
        &address,
        "--front-timeout",
        "0s",
    ]);
    assert!(!refused.status.success());
    let listed_after = sluice.ctl_json(&["listener", "list"]).to_string();
    assert_eq!(
        listed_after, listed,
        "a refused update changed the listener"
    );
}
