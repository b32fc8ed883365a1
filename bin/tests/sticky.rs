//! Sticky sessions configured from the file: the cookie a cluster names routes a
//! client back to its backend, and the answer sets it.

mod common;

use common::http::mock;
use common::Sluice;
use sluice_e2e::{free_addr, HttpConn};

#[test]
fn a_cluster_sticky_cookie_name_routes_and_is_set() {
    let one = mock("one");
    let two = mock("two");
    let listener = free_addr();
    let config = format!(
        r#"
command_socket = "sluice.sock"
worker_count = 1
access_log = "off"

[[listeners]]
protocol = "http"
address = "{listener}"

[clusters.app]
protocol = "http"
sticky_session = true
sticky_cookie = "APPID"
frontends = [ {{ address = "{listener}", hostname = "*", path = "/" }} ]
backends = [
  {{ address = "{one}", sticky_id = "s-one" }},
  {{ address = "{two}", sticky_id = "s-two" }},
]
"#,
        one = one.addr(),
        two = two.addr(),
    );
    let _sluice = Sluice::start(&config);
    for _ in 0..4 {
        let mut conn = HttpConn::connect(listener).expect("connect");
        let request: &[u8] =
            b"GET / HTTP/1.1\r\nHost: app.test\r\nCookie: other=1; APPID=s-two\r\n\r\n";
        let response = conn.request(request).expect("response");
        assert_eq!(response.status, 200);
        assert!(
            response.body_text().starts_with("backend: two"),
            "{}",
            response.body_text()
        );
        // The client already holds the right cookie: nothing to set.
        assert_eq!(response.header("set-cookie"), None);
    }
    let mut conn = HttpConn::connect(listener).expect("connect");
    let response = conn
        .request(b"GET / HTTP/1.1\r\nHost: app.test\r\nCookie: APPID=gone\r\n\r\n")
        .expect("response");
    assert_eq!(response.status, 200);
    let cookie = response
        .header("set-cookie")
        .expect("a sticky cookie is set");
    assert!(cookie.starts_with("APPID=s-"), "{cookie}");
}
