//! A TCP cluster's health check from the configuration file is a TCP connect (no `uri`): a
//! backend that refuses connections is taken out, one that accepts them stays, and its
//! traffic goes on.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::{free_port, round_trip, EchoBackend, EventStream, Sluice};

#[test]
fn a_tcp_cluster_checked_by_connect_takes_out_a_backend_that_refuses() {
    let echo = EchoBackend::start();
    // Accepts (in its backlog) until the event stream listens, then refuses: the
    // BACKEND_DOWN cannot come before the subscription.
    let refusing_listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let refusing = refusing_listener.local_addr().expect("address");
    let listener = format!("127.0.0.1:{}", free_port());
    let config = format!(
        "command_socket = \"sluice.sock\"\nworker_count = 1\naccess_log = \"off\"\n\
         shutdown_grace_period = \"2s\"\n\n\
         [[listeners]]\nprotocol = \"tcp\"\naddress = \"{listener}\"\n\n\
         [clusters.db]\nprotocol = \"tcp\"\n\
         health_check = {{ interval = \"200ms\", unhealthy_threshold = 1 }}\n\
         frontends = [ {{ address = \"{listener}\" }} ]\n\
         backends = [ {{ address = \"{}\", id = \"up\" }}, {{ address = \"{refusing}\", id = \"refusing\" }} ]\n",
        echo.address
    );
    let sluice = Sluice::start(&config);
    let events = EventStream::subscribe(&sluice);
    events.wait_subscribed(&sluice);
    drop(refusing_listener);
    let down = events.wait_for("BACKEND_DOWN", Duration::from_secs(10), || {});
    assert!(down.contains("backend=refusing"), "{down}");
    assert!(
        down.contains("on connect"),
        "the reason names the connect probe: {down}"
    );
    let shown = sluice.ctl_ok(&["cluster", "show", "db"]);
    assert!(shown.contains("TCP connect"), "{shown}");
    for _ in 0..10 {
        let echoed = round_trip(&listener, b"ping").expect("the healthy backend serves");
        assert_eq!(echoed, b"ping");
    }
    assert!(
        !events
            .lines()
            .iter()
            .any(|l| l.contains("BACKEND_DOWN") && l.contains("backend=up")),
        "the backend that accepts connections stays up"
    );
}
