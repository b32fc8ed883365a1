//! Passive checks end to end: a backend that accepts connections but drops every request
//! is taken out (`BackendDown`) without an active health check, and its 502s are counted.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::{free_port, EventStream, Sluice};

/// Accepts connections, reads a little, and closes them without an answer.
fn start_dropping_backend() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind backend");
    let address = listener.local_addr().expect("address").to_string();
    thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buffer = [0u8; 1024];
            let _ = stream.read(&mut buffer);
        }
    });
    address
}

fn status_of(address: &str) -> u16 {
    let Ok(mut stream) = TcpStream::connect(address) else {
        return 0;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    if stream.write_all(request).is_err() {
        return 0;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_backend_that_drops_requests_is_taken_out_within_seconds() {
    let backend = start_dropping_backend();
    let listener = format!("127.0.0.1:{}", free_port());
    let config = format!(
        "command_socket = \"sluice.sock\"\nworker_count = 1\nlog_level = \"info\"\n\
         access_log = \"off\"\nshutdown_grace_period = \"2s\"\n\
         \n[[listeners]]\nprotocol = \"http\"\naddress = \"{listener}\"\n\n\
         [clusters.app]\nprotocol = \"http\"\n\
         frontends = [ {{ address = \"{listener}\", hostname = \"*\", path = \"/\" }} ]\n\
         backends = [ {{ address = \"{backend}\", id = \"app-1\" }} ]\n"
    );
    let sluice = Sluice::start(&config);
    let events = EventStream::subscribe(&sluice);
    let started = Instant::now();
    let mut bad_gateways = 0;
    events.wait_for("BACKEND_DOWN", Duration::from_secs(15), || {
        if status_of(&listener) == 502 {
            bad_gateways += 1;
        }
    });
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    let metrics = sluice.ctl_json(&["metrics", "--backend", "app-1"]);
    let backend = &metrics["clusters"]["app"]["backends"]["app-1"];
    let value = |name: &str| {
        backend[name]
            .as_u64()
            .unwrap_or_else(|| panic!("no {name} in {metrics:#}"))
    };
    assert_eq!(value("answers_502"), bad_gateways);
    assert!(bad_gateways >= 1);
    assert!(value("retry_failures") >= 1, "{backend:#}");
}
