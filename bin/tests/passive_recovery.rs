//! A backend taken out by passive checks comes back by itself: stopped under keep-alive load
//! until its failed connects take it out, then started again, it serves again within 2 s, and
//! no client request fails meanwhile (a response the kill itself cuts short cannot be saved:
//! those are counted apart).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::http::{http_config, mock, Load, Mode, Route};
use common::{free_port, wait_until, EventStream, Sluice};

const HOST: &str = "app.test";

#[test]
fn a_backend_down_for_failed_connects_serves_again_within_2s_of_its_restart() {
    let mut first = mock("app-1");
    let second = mock("app-2");
    let listener: SocketAddr = format!("127.0.0.1:{}", free_port())
        .parse()
        .expect("address");
    let route = Route::new("app", HOST, &[first.addr(), second.addr()]);
    let sluice = Sluice::start(&http_config(1, listener, &[route]));
    let events = EventStream::subscribe(&sluice);
    events.wait_subscribed(&sluice);
    let mut modes = vec![Mode::KeepAlive; 4];
    modes.extend([Mode::NewConnections; 4]);
    let load = Load::start(listener, HOST, "app-", &modes);
    load.wait_for_more(200);

    first.stop();
    // A response cut by the kill itself cannot be saved: count from once the backend is gone.
    std::thread::sleep(Duration::from_millis(200));
    let cut_by_the_kill = load.failure_count();
    let down = events.wait_for("BACKEND_DOWN", Duration::from_secs(15), || {});
    assert!(down.contains(&first.addr().to_string()), "{down}");
    load.wait_for_more(200);

    first.clear_requests();
    first.restart().expect("the backend starts again");
    let restarted = Instant::now();
    wait_until(
        "the restarted backend to serve",
        Duration::from_secs(5),
        || first.request_count() > 0,
    );
    let back_after = restarted.elapsed();
    events.wait_for("BACKEND_UP", Duration::from_secs(5), || {});
    let (succeeded, failures) = load.stop();
    let meanwhile = &failures[cut_by_the_kill..];
    println!(
        "served again {back_after:?} after its restart; {succeeded} requests, \
         {cut_by_the_kill} cut by the kill, {} failed meanwhile",
        meanwhile.len()
    );
    assert!(
        back_after < Duration::from_secs(2),
        "served again after {back_after:?}"
    );
    assert!(
        meanwhile.is_empty(),
        "{} of {succeeded} failed: {meanwhile:?}",
        meanwhile.len()
    );
}
