//! Clusters from etcd: one etcd started by the test (Debian's `etcd-server`), two Sluice
//! instances on different ports fed by it. Keys are put, changed and deleted with
//! `etcdctl`; both instances must follow, refuse invalid documents alone, and keep
//! serving while etcd is away.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::http::{get, mock, served_by, Load, Mode};
use common::loopback::{loopback, loopback_mocks};
use common::{wait_until, EventStream, Sluice};
use sluice_e2e::{free_addr, Etcd, MockHttpServer, TcpRelay, TestDnsServer};

/// What the issue asks: a change reaches every instance within this.
const PROPAGATION: Duration = Duration::from_secs(1);

/// One Sluice instance fed by etcd.
struct Instance {
    sluice: Sluice,
    listener: SocketAddr,
    metrics: SocketAddr,
}

impl Instance {
    /// Starts an instance on fresh ports reading `prefix` at `endpoint`, its cache at
    /// `cache`, with `extra` appended to its config.
    fn start(endpoint: &str, prefix: &str, cache: &Path, extra: &str) -> Instance {
        Instance::start_on(free_addr(), endpoint, prefix, cache, extra)
    }

    fn start_on(
        listener: SocketAddr,
        endpoint: &str,
        prefix: &str,
        cache: &Path,
        extra: &str,
    ) -> Instance {
        Instance::start_with(listener, endpoint, prefix, cache, "", extra)
    }

    /// Like [`Instance::start_on`], with `globals` among the config's top-level keys.
    fn start_with(
        listener: SocketAddr,
        endpoint: &str,
        prefix: &str,
        cache: &Path,
        globals: &str,
        extra: &str,
    ) -> Instance {
        let metrics = free_addr();
        let config = format!(
            "command_socket = \"sluice.sock\"\nworker_count = 2\nlog_level = \"info\"\n\
             access_log = \"off\"\nshutdown_grace_period = \"2s\"\n\
             metrics_address = \"{metrics}\"\n{globals}\n\
             [[listeners]]\nprotocol = \"http\"\naddress = \"{listener}\"\n\n\
             [etcd]\nendpoints = [\"{endpoint}\"]\nprefix = \"{prefix}\"\n\
             dial_timeout = \"500ms\"\ncache = \"{}\"\n{extra}",
            cache.display()
        );
        Instance {
            sluice: Sluice::start(&config),
            listener,
            metrics,
        }
    }

    fn serves(&self, host: &str, backend_prefix: &str) -> bool {
        matches!(get(self.listener, host), Ok(r) if served_by(&r, backend_prefix))
    }

    fn answers(&self, host: &str, status: u16) -> bool {
        matches!(get(self.listener, host), Ok(r) if r.status == status)
    }

    fn source(&self) -> serde_json::Value {
        self.sluice.ctl_json(&["status"])["source"].clone()
    }

    fn backend_requests(&self, cluster: &str, backend: &str) -> u64 {
        let metrics = self.sluice.ctl_json(&["metrics"]);
        metrics["clusters"][cluster]["backends"][backend]["requests"]
            .as_u64()
            .unwrap_or(0)
    }

    /// The addresses of the cluster's backends, sorted; none while the cluster does not
    /// exist (its etcd key may not be applied yet).
    fn addresses(&self, cluster: &str) -> Vec<String> {
        let output = self.sluice.ctl(&["--json", "cluster", "show", cluster]);
        if !output.status.success() {
            return Vec::new();
        }
        let shown: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("one JSON document");
        let mut addresses: Vec<String> = shown["cluster"]["backends"]
            .as_array()
            .map(|backends| {
                backends
                    .iter()
                    .filter_map(|b| b["address"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        addresses.sort();
        addresses
    }

    fn weights(&self, cluster: &str) -> Vec<u64> {
        let shown = self.sluice.ctl_json(&["cluster", "show", cluster]);
        shown["cluster"]["backends"]
            .as_array()
            .map(|backends| {
                backends
                    .iter()
                    .filter_map(|b| b["weight"].as_u64())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn http_status(&self, path: &str) -> (u16, String) {
        match sluice_e2e::http_get(self.metrics, "localhost", path) {
            Ok(response) => (response.status, response.body_text()),
            Err(error) => (0, error.to_string()),
        }
    }
}

/// A cluster document routing `hostname` (on every listener) to `backends` (id, address,
/// weight).
fn document(hostname: &str, backends: &[(&str, SocketAddr, u32)]) -> String {
    let backends: Vec<String> = backends
        .iter()
        .map(|(id, address, weight)| {
            format!("  {{ id = \"{id}\", address = \"{address}\", weight = {weight} }},\n")
        })
        .collect();
    format!(
        "frontends = [{{ hostname = \"{hostname}\" }}]\nbackends = [\n{}]\n",
        backends.concat()
    )
}

/// Waits for `condition` on every instance, within `PROPAGATION` of `since`.
fn within_propagation(what: &str, since: Instant, condition: impl Fn() -> bool) {
    let left = PROPAGATION.saturating_sub(since.elapsed());
    wait_until(what, left, condition);
    println!("{what}: {:?}", since.elapsed());
}

#[test]
fn a_key_put_changed_and_deleted_reaches_both_instances_within_a_second() {
    let etcd = Etcd::start();
    let cache = tempfile::tempdir().expect("temp dir");
    let (a, b) = (mock("a"), mock("b"));
    let one = Instance::start(&etcd.endpoint(), "/sluice/", &cache.path().join("1"), "");
    let two = Instance::start(&etcd.endpoint(), "/sluice/", &cache.path().join("2"), "");
    assert!(one.answers("api.test", 404) && two.answers("api.test", 404));

    let key = "/sluice/clusters/api";
    etcd.put(
        key,
        &document("api.test", &[("a", a.addr(), 100), ("b", b.addr(), 100)]),
    );
    let put = Instant::now();
    within_propagation("both instances to route the new key", put, || {
        one.serves("api.test", "") && two.serves("api.test", "")
    });
    for _ in 0..10 {
        assert!(one.serves("api.test", "") && two.serves("api.test", ""));
    }
    let before = [
        one.backend_requests("api", "a"),
        two.backend_requests("api", "a"),
    ];
    assert!(before[0] > 0 && before[1] > 0, "{before:?}");

    etcd.put(
        key,
        &document("api.test", &[("a", a.addr(), 10), ("b", b.addr(), 90)]),
    );
    let changed = Instant::now();
    within_propagation("both instances to take the new weights", changed, || {
        one.weights("api") == [10, 90] && two.weights("api") == [10, 90]
    });
    // Changed in place: the backends kept their counters.
    for (instance, before) in [(&one, before[0]), (&two, before[1])] {
        assert!(instance.serves("api.test", ""));
        assert!(instance.backend_requests("api", "a") >= before);
    }
    let log = one.sluice.log();
    assert!(log.contains("changes in one batch"), "{log}");

    etcd.delete(key);
    let deleted = Instant::now();
    within_propagation("both instances to answer 404", deleted, || {
        one.answers("api.test", 404) && two.answers("api.test", 404)
    });
    let source = one.source();
    assert_eq!(source["state"], "connected", "{source}");
    assert!(source["revision"].as_i64().unwrap_or(0) >= 3, "{source}");
}

#[test]
fn an_invalid_document_is_refused_alone_and_applies_once_fixed() {
    let etcd = Etcd::start();
    let cache = tempfile::tempdir().expect("temp dir");
    let (good, bad) = (mock("good"), mock("bad"));
    let listener = free_addr();
    // A cluster of the file that a key also names.
    let local = format!(
        "\n[clusters.local]\nfrontends = [{{ hostname = \"local.test\" }}]\n\
         backends = [{{ address = \"{}\" }}]\n",
        good.addr()
    );
    let one = Instance::start_on(
        listener,
        &etcd.endpoint(),
        "/s/",
        &cache.path().join("1"),
        &local,
    );
    let events = EventStream::subscribe(&one.sluice);
    events.wait_subscribed(&one.sluice);

    etcd.put(
        "/s/clusters/good",
        &document("good.test", &[("g", good.addr(), 100)]),
    );
    etcd.put(
        "/s/clusters/bad",
        &document("bad.test", &[("b", bad.addr(), 100)]),
    );
    wait_until("both keys to apply", Duration::from_secs(5), || {
        one.serves("good.test", "good") && one.serves("bad.test", "bad")
    });

    // A negative weight on line 2: refused, the previous version of `bad` stays.
    let invalid = format!(
        "frontends = [{{ hostname = \"bad.test\" }}]\n\
         backends = [{{ id = \"b\", address = \"{}\", weight = -1 }}]\n",
        bad.addr()
    );
    etcd.put("/s/clusters/bad", &invalid);
    let refused = events.wait_for("SOURCE_REFUSED", Duration::from_secs(5), || {});
    assert!(refused.contains("/s/clusters/bad:2:"), "{refused}");
    assert!(refused.contains("backends[0].weight"), "{refused}");
    let source = one.source();
    let refusals = source["refused"].as_array().cloned().unwrap_or_default();
    assert_eq!(refusals.len(), 1, "{source}");
    assert_eq!(refusals[0]["key"], "/s/clusters/bad", "{source}");
    let status_text = one.sluice.ctl_ok(&["status"]);
    assert!(
        status_text.contains("refused /s/clusters/bad:"),
        "{status_text}"
    );
    assert!(
        one.serves("bad.test", "bad"),
        "the previous version must stay"
    );
    assert!(one.serves("good.test", "good"));
    let (code, body) = one.http_status("/status");
    assert_eq!(code, 200);
    assert!(body.contains("/s/clusters/bad"), "{body}");

    // A key naming a cluster of the file is refused; the file's cluster stays.
    events.clear();
    etcd.put(
        "/s/clusters/local",
        &document("other.test", &[("x", bad.addr(), 1)]),
    );
    let collision = events.wait_for("SOURCE_REFUSED", Duration::from_secs(5), || {});
    assert!(collision.contains("/s/clusters/local"), "{collision}");
    assert!(one.serves("local.test", "good"));

    // ctl changes to an etcd cluster are refused, naming the key.
    let output = one.sluice.ctl(&["cluster", "remove", "good"]);
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("/s/clusters/good"), "{message}");
    assert!(one.serves("good.test", "good"));

    // Export prints the document of the key: putting it back changes nothing.
    let exported = one.sluice.ctl_ok(&["cluster", "export", "good"]);
    // The frontends' table alone, up to the next array of tables (its backends).
    let frontends = exported
        .split("[[frontends]]")
        .nth(1)
        .and_then(|rest| rest.split("[[").next())
        .unwrap_or_default();
    assert!(!frontends.contains("address"), "{exported}");
    etcd.put(
        "/s/clusters/copy",
        &exported.replace("good.test", "copy.test"),
    );
    wait_until("the exported copy to serve", Duration::from_secs(5), || {
        one.serves("copy.test", "good")
    });

    // Fixing the key applies it.
    etcd.put(
        "/s/clusters/bad",
        &document("bad.test", &[("b", bad.addr(), 5)]),
    );
    wait_until("the fixed key to apply", Duration::from_secs(5), || {
        one.weights("bad") == [5]
    });
    // The refusal is forgotten once the batch is recorded, just after the workers applied it.
    wait_until(
        "the fixed key to leave the refusals",
        Duration::from_secs(5),
        || {
            let source = one.source();
            let refused_keys: Vec<&str> = source["refused"]
                .as_array()
                .map(|r| r.iter().filter_map(|k| k["key"].as_str()).collect())
                .unwrap_or_default();
            refused_keys == ["/s/clusters/local"]
        },
    );
}

#[test]
fn a_thousand_keys_in_one_transaction_apply_in_one_batch_on_both_instances() {
    const CLUSTERS: usize = 1_000;
    let etcd = Etcd::start();
    let cache = tempfile::tempdir().expect("temp dir");
    let backend = mock("many");
    let one = Instance::start(&etcd.endpoint(), "/m/", &cache.path().join("1"), "");
    let two = Instance::start(&etcd.endpoint(), "/m/", &cache.path().join("2"), "");
    // The clusters, written as a config file and pushed in one transaction.
    let mut file = format!(
        "[[listeners]]\naddress = \"{}\"\n\n[etcd]\nendpoints = [\"{}\"]\nprefix = \"/m/\"\n",
        free_addr(),
        etcd.endpoint()
    );
    for index in 0..CLUSTERS {
        file.push_str(&format!(
            "\n[clusters.c{index}]\nfrontends = [{{ hostname = \"c{index}.test\" }}]\n\
             backends = [{{ address = \"{}\" }}]\n",
            backend.addr()
        ));
    }
    let path = cache.path().join("many.toml");
    std::fs::write(&path, file).expect("write the file");
    let output = std::process::Command::new(common::sluice_bin())
        .args(["etcd", "push", "-c"])
        .arg(&path)
        .output()
        .expect("run sluice etcd push");
    assert!(
        output.status.success(),
        "etcd push failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let pushed = Instant::now();
    assert_eq!(etcd.count("/m/clusters/"), CLUSTERS);
    for instance in [&one, &two] {
        wait_until(
            "the thousand clusters to serve",
            Duration::from_secs(2).saturating_sub(pushed.elapsed()),
            || instance.serves("c999.test", "many"),
        );
    }
    println!(
        "1000 keys served by both instances after {:?}",
        pushed.elapsed()
    );
    for instance in [&one, &two] {
        assert!(instance.serves("c0.test", "many") && instance.serves("c500.test", "many"));
        // Main logs the batch once every worker answered, just after they serve it.
        wait_until("the batch to be logged", Duration::from_secs(5), || {
            instance.sluice.log().contains("keys applied")
        });
        let log = instance.sluice.log();
        let batches: Vec<&str> = log
            .lines()
            .filter(|line| line.contains("keys applied") && !line.contains("SOURCE_APPLIED"))
            .collect();
        let etcd_lines: Vec<&str> = log.lines().filter(|l| l.contains("etcd")).collect();
        assert_eq!(batches.len(), 1, "{etcd_lines:#?}");
        assert!(
            batches[0].contains(": 1000 keys applied, 0 refused"),
            "{}",
            batches[0]
        );
        assert_eq!(instance.source()["clusters"], 1000);
    }
}

#[test]
fn etcd_down_under_load_fails_nothing_and_instances_catch_up_or_start_from_the_cache() {
    let mut etcd = Etcd::start();
    let cache = tempfile::tempdir().expect("temp dir");
    let (a, b) = (mock("up-a"), mock("up-b"));
    let key = "/sluice/clusters/api";
    etcd.put(key, &document("api.test", &[("a", a.addr(), 100)]));
    // The second instance reaches etcd through a relay that can cut it off alone.
    let etcd_addr: SocketAddr = etcd
        .endpoint()
        .trim_start_matches("http://")
        .parse()
        .expect("an address");
    let relay = TcpRelay::start(etcd_addr).expect("start the relay");
    let cache_two = cache.path().join("2");
    let one = Instance::start(&etcd.endpoint(), "/sluice/", &cache.path().join("1"), "");
    let relayed = format!("http://{}", relay.addr());
    let two = Instance::start(&relayed, "/sluice/", &cache_two, "");
    for instance in [&one, &two] {
        wait_until("the key to apply", Duration::from_secs(5), || {
            instance.serves("api.test", "up-")
        });
    }
    let loads = [
        Load::start(
            one.listener,
            "api.test",
            "up-",
            &[Mode::KeepAlive, Mode::NewConnections],
        ),
        Load::start(
            two.listener,
            "api.test",
            "up-",
            &[Mode::KeepAlive, Mode::NewConnections],
        ),
    ];
    loads[0].wait_for_more(20);

    // etcd down: both keep serving, report it, and /health stays 200.
    etcd.stop();
    for instance in [&one, &two] {
        wait_until(
            "the source to be reported down",
            Duration::from_secs(10),
            || instance.source()["state"] == "disconnected",
        );
        assert_eq!(instance.http_status("/health").0, 200);
        let (_, metrics) = instance.http_status("/metrics");
        assert!(metrics.contains("sluice_etcd_connected 0"), "{metrics}");
    }
    for load in &loads {
        load.wait_for_more(20);
    }
    etcd.resume();
    for instance in [&one, &two] {
        wait_until("the source to be back", Duration::from_secs(10), || {
            instance.source()["state"] == "connected"
        });
        assert!(instance.sluice.log().contains("etcd reachable again"));
    }

    // The second instance cut off alone: a change made meanwhile reaches it once back.
    relay.cut();
    wait_until(
        "the second instance to be cut off",
        Duration::from_secs(10),
        || two.source()["state"] == "disconnected",
    );
    etcd.put(
        key,
        &document("api.test", &[("a", a.addr(), 100), ("b", b.addr(), 50)]),
    );
    wait_until(
        "the first instance to take the change",
        Duration::from_secs(5),
        || one.weights("api") == [100, 50],
    );
    assert_eq!(
        two.weights("api"),
        [100],
        "the cut-off instance cannot know yet"
    );
    relay.restore();
    wait_until(
        "the second instance to catch up",
        Duration::from_secs(10),
        || two.weights("api") == [100, 50],
    );
    for load in &loads {
        load.wait_for_more(20);
    }
    for load in loads {
        let (succeeded, failures) = load.stop();
        assert!(
            failures.is_empty(),
            "{} of {} requests failed: {:?}",
            failures.len(),
            succeeded + failures.len() as u64,
            &failures[..failures.len().min(5)]
        );
    }

    // Restarted while etcd is down: the second instance starts from its cache, which it
    // writes (and syncs to disk) once the change is applied: killed before that, it
    // would rightly start from the version before.
    wait_until(
        "the second instance to cache the change",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&cache_two)
                .is_ok_and(|cached| cached.contains(&b.addr().to_string()))
        },
    );
    let listener_two = two.listener;
    drop(two);
    etcd.stop();
    let restarted = Instance::start_on(listener_two, &relayed, "/sluice/", &cache_two, "");
    wait_until(
        "the restarted instance to serve from its cache",
        Duration::from_secs(10),
        || restarted.serves("api.test", "up-"),
    );
    assert_eq!(restarted.weights("api"), [100, 50]);
    let log = restarted.sluice.log();
    assert!(log.contains("starting from the cache"), "{log}");
    assert_eq!(restarted.source()["from_cache"], true);
    etcd.resume();
    wait_until(
        "the restarted instance to reach etcd",
        Duration::from_secs(10),
        || restarted.source()["state"] == "connected",
    );
    assert_eq!(restarted.source()["from_cache"], false);
}

/// A cluster document routing `hostname` to one backend `web` at `address`, with
/// `extra` settings.
fn named_document(hostname: &str, address: &str, extra: &str) -> String {
    format!(
        "frontends = [{{ hostname = \"{hostname}\" }}]\n\
         backends = [{{ id = \"web\", address = \"{address}\"{extra} }}]\n"
    )
}

/// Sends requests for `host` until each of `servers` has answered one.
fn wait_requests_reach(instance: &Instance, host: &str, servers: &[&MockHttpServer]) {
    for server in servers {
        server.clear_requests();
    }
    let names: Vec<&str> = servers.iter().map(|s| s.name()).collect();
    wait_until(
        &format!("requests to reach {names:?}"),
        Duration::from_secs(10),
        || {
            let _ = get(instance.listener, host);
            servers.iter().all(|server| server.request_count() > 0)
        },
    );
}

#[test]
fn a_key_naming_backends_by_host_name_resolves_them_and_follows_the_dns_answers() {
    const NAME: &str = "backends.test";
    /// What a DNS change may take to reach main and every worker on a loaded machine.
    const FOLLOW: Duration = Duration::from_secs(5);
    let (port, servers) = loopback_mocks(&[2, 3, 4]);
    let at = |lasts: &[u8]| -> Vec<String> {
        lasts
            .iter()
            .map(|last| format!("127.0.0.{last}:{port}"))
            .collect()
    };
    let dns = TestDnsServer::start(1).expect("dns server");
    dns.set(NAME, &[loopback(2), loopback(3)]);
    let etcd = Etcd::start();
    let cache = tempfile::tempdir().expect("temp dir");
    let globals = format!(
        "dns_servers = [\"{}\"]\ndns_refresh = \"200ms\"\n",
        dns.address()
    );
    let one = Instance::start_with(
        free_addr(),
        &etcd.endpoint(),
        "/d/",
        &cache.path().join("1"),
        &globals,
        "",
    );
    let events = EventStream::subscribe(&one.sluice);
    events.wait_subscribed(&one.sluice);

    // A name that does not resolve: the key is refused alone, naming the key and the name.
    etcd.put(
        "/d/clusters/lost",
        &named_document("lost.test", &format!("nowhere.test:{port}"), ""),
    );
    let refused = events.wait_for("SOURCE_REFUSED", FOLLOW, || {});
    assert!(
        refused.contains("/d/clusters/lost:2:") && refused.contains("cannot resolve nowhere.test"),
        "{refused}"
    );
    assert!(one.answers("lost.test", 404));

    // Two addresses: one backend each, and traffic reaches both.
    etcd.put(
        "/d/clusters/api",
        &named_document("api.test", &format!("{NAME}:{port}"), ""),
    );
    wait_until("the name's two addresses", FOLLOW, || {
        one.addresses("api") == at(&[2, 3])
    });
    wait_requests_reach(&one, "api.test", &[&servers[0], &servers[1]]);

    // The answers change: the backends follow.
    dns.set(NAME, &[loopback(3), loopback(4)]);
    wait_until("the backends to follow the new answers", FOLLOW, || {
        one.addresses("api") == at(&[3, 4])
    });
    wait_requests_reach(&one, "api.test", &[&servers[1], &servers[2]]);

    // A reload of the file leaves etcd's names to etcd: they are still refreshed.
    one.sluice.ctl_ok(&["reload"]);
    dns.set(NAME, &[loopback(2)]);
    wait_until("the backends to follow after a reload", FOLLOW, || {
        one.addresses("api") == at(&[2])
    });

    // The export gives the key's document back, by name.
    let exported = one.sluice.ctl_ok(&["cluster", "export", "api"]);
    assert!(
        exported.contains(&format!("\"{NAME}:{port}\"")) && !exported.contains("127.0.0.2"),
        "{exported}"
    );

    // resolve_later: the key applies before its name resolves, and serves once it does.
    etcd.put(
        "/d/clusters/later",
        &named_document(
            "later.test",
            &format!("later.test:{port}"),
            ", resolve_later = true",
        ),
    );
    wait_until("the resolve_later key to apply", FOLLOW, || {
        one.source()["clusters"] == 2
    });
    dns.set("later.test", &[loopback(4)]);
    wait_until("the late name to serve", FOLLOW, || {
        one.serves("later.test", "dns-4")
    });

    // The key deleted: 404, and its name leaves the refreshes.
    etcd.delete("/d/clusters/api");
    wait_until("the deleted key to answer 404", FOLLOW, || {
        one.answers("api.test", 404)
    });
    wait_until("the name to leave the refreshes", FOLLOW, || {
        let (_, metrics) = one.http_status("/metrics");
        !metrics.contains(NAME) && metrics.contains("later.test")
    });
}

#[test]
fn a_state_load_leaves_the_clusters_of_etcd_as_etcd_has_them() {
    let etcd = Etcd::start();
    let cache = tempfile::tempdir().expect("temp dir");
    let (a, b, local) = (mock("etcd-a"), mock("file-b"), mock("local"));
    let local_cluster = format!(
        "\n[clusters.local]\nfrontends = [{{ hostname = \"local.test\" }}]\n\
         backends = [{{ address = \"{}\" }}]\n",
        local.addr()
    );
    let one = Instance::start_on(
        free_addr(),
        &etcd.endpoint(),
        "/st/",
        &cache.path().join("1"),
        &local_cluster,
    );
    let path = |name: &str| cache.path().join(name).to_str().expect("path").to_owned();
    // Saved before etcd had any key.
    one.sluice
        .ctl_ok(&["state", "save", "-f", &path("early.state")]);
    let key = "/st/clusters/api";
    etcd.put(key, &document("api.test", &[("a", a.addr(), 100)]));
    wait_until("the key to apply", Duration::from_secs(5), || {
        one.serves("api.test", "etcd-a")
    });

    // Loading a file without etcd's cluster keeps it as etcd has it.
    let answer = one
        .sluice
        .ctl_ok(&["state", "load", "-f", &path("early.state")]);
    assert!(
        one.serves("api.test", "etcd-a"),
        "etcd's cluster dropped by a state load: {answer}"
    );
    assert!(one.serves("local.test", "local"));

    // A save leaves etcd's cluster out, and says so.
    let answer = one
        .sluice
        .ctl_ok(&["state", "save", "-f", &path("saved.state")]);
    assert!(
        answer.contains("without the 1 clusters etcd manages"),
        "{answer}"
    );
    let saved = std::fs::read_to_string(path("saved.state")).expect("the saved state");
    assert!(
        saved.contains("local.test") && !saved.contains("api.test"),
        "{saved}"
    );

    // A state file of another instance that holds its own `api`: etcd's stays, the
    // answer names it with its key, and the file's other clusters load.
    let other_listener = free_addr();
    let other = Sluice::start(&format!(
        "command_socket = \"sluice.sock\"\nworker_count = 1\n\n\
         [[listeners]]\nprotocol = \"http\"\naddress = \"{other_listener}\"\n\n\
         [clusters.api]\nfrontends = [{{ hostname = \"api.test\" }}]\n\
         backends = [{{ address = \"{}\" }}]\n\n\
         [clusters.other]\nfrontends = [{{ hostname = \"other.test\" }}]\n\
         backends = [{{ address = \"{}\" }}]\n",
        b.addr(),
        local.addr()
    ));
    other.ctl_ok(&["state", "save", "-f", &path("other.state")]);
    drop(other);
    // As if saved on this machine: the same listener.
    let copied = std::fs::read_to_string(path("other.state"))
        .expect("the other state")
        .replace(&other_listener.to_string(), &one.listener.to_string());
    std::fs::write(path("other.state"), copied).expect("write the state");
    let answer = one
        .sluice
        .ctl_ok(&["state", "load", "-f", &path("other.state")]);
    assert!(
        answer.contains("kept as etcd has them")
            && answer.contains(&format!("cluster api (key {key})")),
        "{answer}"
    );
    assert!(one.serves("api.test", "etcd-a"), "{answer}");
    assert!(one.serves("other.test", "local"), "{answer}");
    assert!(one.answers("local.test", 404), "{answer}");
    assert_eq!(one.source()["clusters"], 1);

    // etcd still drives its cluster.
    etcd.put(key, &document("api.test", &[("b", b.addr(), 100)]));
    wait_until("the key's change to apply", Duration::from_secs(5), || {
        one.serves("api.test", "file-b")
    });
}

/// A main process that is not the test's child (it was started by an upgrade): killed with
/// its workers when dropped.
struct Successor(u32);

impl Drop for Successor {
    fn drop(&mut self) {
        let workers = common::child_pids(self.0);
        common::send_signal("KILL", self.0);
        for pid in workers {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

#[test]
fn after_an_upgrade_etcd_still_drives_its_clusters() {
    let etcd = Etcd::start();
    let cache = tempfile::tempdir().expect("temp dir");
    let (a, b) = (mock("up-a"), mock("up-b"));
    let mut one = Instance::start(&etcd.endpoint(), "/up/", &cache.path().join("1"), "");
    let key = "/up/clusters/api";
    etcd.put(key, &document("api.test", &[("a", a.addr(), 100)]));
    wait_until("the key to apply", Duration::from_secs(5), || {
        one.serves("api.test", "up-a")
    });

    let answer = one.sluice.ctl_ok(&["upgrade"]);
    assert!(answer.contains("generation 2"), "{answer}");
    let exit = one.sluice.wait_exit(Duration::from_secs(20));
    assert!(exit.success(), "the old main exited with {exit}");
    let status = one.sluice.ctl_json(&["status"]);
    let _successor = Successor(status["main_pid"].as_u64().unwrap_or(0) as u32);
    assert_eq!(status["generation"], 2, "{status}");
    assert!(one.serves("api.test", "up-a"));
    // The new main reads etcd and takes over the cluster the old one had from it.
    wait_until("the new main to read etcd", Duration::from_secs(5), || {
        one.source()["revision"].as_i64().unwrap_or(0) > 0
    });
    let source = one.source();
    assert_eq!(source["clusters"], 1, "{source}");
    assert!(
        source["refused"].as_array().is_none_or(Vec::is_empty),
        "{source}"
    );

    etcd.put(
        key,
        &document("api.test", &[("a", a.addr(), 10), ("b", b.addr(), 90)]),
    );
    wait_until("the change to apply", Duration::from_secs(5), || {
        one.weights("api") == [10, 90]
    });
    let refused = one.sluice.ctl(&["cluster", "remove", "api"]);
    assert!(
        !refused.status.success(),
        "ctl must not change etcd's cluster"
    );
    etcd.delete(key);
    wait_until(
        "the deleted key to answer 404",
        Duration::from_secs(5),
        || one.answers("api.test", 404),
    );
}
