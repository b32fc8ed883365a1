use std::path::Path;

use proptest::prelude::*;

use super::*;

/// One cluster of a generated file, in one of the forms a file may take.
#[derive(Debug, Clone)]
struct ClusterSpec {
    name: usize,
    /// 1001 is out of range: the file is refused.
    weight: u32,
    /// A small set, so that two clusters sometimes share a route.
    host: usize,
    /// Backends as `[[clusters.NAME.backends]]` sections instead of an array.
    table_backends: bool,
    /// A `[clusters.NAME.health_check]` section, at the end of the file when
    /// `late` (after the other clusters).
    health_check: Option<bool>,
    /// The listener its frontend names (1: one the file may not have).
    listener: usize,
    /// Also a backend given by host name.
    named: bool,
}

#[derive(Debug, Clone)]
struct FileSpec {
    /// Listeners 0 and, when set, 1.
    second_listener: bool,
    clusters: Vec<ClusterSpec>,
}

const LISTENERS: [&str; 2] = ["127.0.0.1:8080", "127.0.0.1:8090"];

fn file_text(file: &FileSpec) -> String {
    let mut text =
        String::from("log_level = \"warn\"\n\n[[listeners]]\naddress = \"127.0.0.1:8080\"\n");
    if file.second_listener {
        text.push_str("\n[[listeners]]\naddress = \"127.0.0.1:8090\"\n");
    }
    let mut late = String::new();
    for cluster in &file.clusters {
        let name = format!("c{}", cluster.name);
        text.push_str(&format!(
            "\n[clusters.{name}]\n# not a header: [clusters.x]\nfrontends = [ {{ address = \"{}\", hostname = \"h{}.test\" }} ]\n",
            LISTENERS[cluster.listener], cluster.host
        ));
        if cluster.table_backends {
            text.push_str(&format!(
                "\n[[clusters.{name}.backends]]\naddress = \"127.0.0.1:9001\"\nweight = {}\n\
                 [[clusters.{name}.backends]]\naddress = \"127.0.0.1:9002\"\n",
                cluster.weight
            ));
        } else {
            text.push_str(&format!(
                "backends = [\n  {{ address = \"127.0.0.1:9001\", weight = {} }},\n  {{ address = \"127.0.0.1:9002\" }},\n]\n",
                cluster.weight
            ));
        }
        if cluster.named {
            text.push_str(&format!(
                "\n[[clusters.{name}.backends]]\naddress = \"api{}.internal:9003\"\n",
                cluster.name
            ));
        }
        if let Some(at_end) = cluster.health_check {
            let section = format!("[clusters.{name}.health_check]\nuri = '''/health'''\n");
            if at_end {
                late.push_str(&section);
            } else {
                text.push_str(&section);
            }
        }
    }
    text.push_str(&late);
    text
}

fn cluster_spec(name: usize) -> impl Strategy<Value = ClusterSpec> {
    (
        prop_oneof![9 => Just(100u32), 3 => 0u32..=1000, 1 => Just(1001u32)],
        prop_oneof![8 => Just(name), 1 => 0usize..3],
        any::<bool>(),
        prop_oneof![Just(None), any::<bool>().prop_map(Some)],
        prop_oneof![8 => Just(0usize), 1 => Just(1usize)],
        prop_oneof![4 => Just(false), 1 => Just(true)],
    )
        .prop_map(
            move |(weight, host, table_backends, health_check, listener, named)| ClusterSpec {
                name,
                weight,
                host: host + 100 * usize::from(host != name),
                table_backends,
                health_check,
                listener,
                named,
            },
        )
}

fn file_spec() -> impl Strategy<Value = FileSpec> {
    (any::<bool>(), proptest::collection::vec(0usize..12, 1..8)).prop_flat_map(
        |(second_listener, names)| {
            let mut names = names;
            names.sort_unstable();
            names.dedup();
            let clusters: Vec<_> = names.into_iter().map(cluster_spec).collect();
            clusters.prop_map(move |clusters| FileSpec {
                second_listener,
                clusters,
            })
        },
    )
}

/// A file and edits of it: some clusters changed, removed or added, the
/// listeners sometimes changed.
fn file_and_edits() -> impl Strategy<Value = (FileSpec, Vec<FileSpec>)> {
    file_spec().prop_flat_map(|first| {
        let edits = proptest::collection::vec(
            (
                file_spec(),
                proptest::collection::vec(any::<bool>(), 12),
                any::<bool>(),
            ),
            1..5,
        );
        (Just(first), edits).prop_map(|(first, edits)| {
            let mut previous = first.clone();
            let mut files = Vec::new();
            for (other, keep, keep_listeners) in edits {
                // Most clusters stay as they were; the others come from `other`.
                let mut clusters: Vec<ClusterSpec> = previous
                    .clusters
                    .iter()
                    .filter(|c| keep[c.name])
                    .cloned()
                    .collect();
                for cluster in other.clusters {
                    if !clusters.iter().any(|c| c.name == cluster.name) {
                        clusters.push(cluster);
                    }
                }
                let file = FileSpec {
                    second_listener: if keep_listeners {
                        previous.second_listener
                    } else {
                        other.second_listener
                    },
                    clusters,
                };
                files.push(file.clone());
                previous = file;
            }
            (first, files)
        })
    })
}

fn whole(text: &str) -> Result<Config, String> {
    root::parse(text, "scale.toml", Path::new("/etc/sluice")).map_err(|e| e.to_string())
}

fn cached(cache: &mut ParseCache, text: &str) -> Result<(Config, CacheUse), String> {
    cache
        .parse_counted(text, "scale.toml", Path::new("/etc/sluice"))
        .map_err(|e| e.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever was read before, a read through the cache gives what a whole
    /// parse gives: the same configuration, or the same refusal.
    #[test]
    fn a_cached_read_equals_a_whole_parse((first, edits) in file_and_edits(), split in any::<bool>()) {
        let mut cache = if split { ParseCache::splitting_from(2) } else { ParseCache::new() };
        // `reload -c other.toml` and back: another name in the same folder.
        let names = ["scale.toml", "other.toml"];
        // The clusters of the last read that succeeded.
        let mut before: Vec<String> = Vec::new();
        for (index, file) in std::iter::once(&first).chain(&edits).enumerate() {
            let text = file_text(file);
            let name = names[index % 2];
            let folder = Path::new("/etc/sluice");
            let expected = root::parse(&text, name, folder).map_err(|e| e.to_string());
            let got = cache
                .parse(&text, name, folder)
                .map_err(|e| e.to_string());
            prop_assert_eq!(&got, &expected, "{}", text);
            if let Ok(config) = got {
                let now: Vec<String> = config
                    .clusters
                    .iter()
                    .map(|cluster| cluster.cluster.cluster_id.clone())
                    .collect();
                let mut dropped: Vec<&str> = cache.dropped().collect();
                dropped.sort_unstable();
                let mut gone: Vec<&str> = before
                    .iter()
                    .filter(|id| !now.contains(id))
                    .map(String::as_str)
                    .collect();
                gone.sort_unstable();
                prop_assert_eq!(dropped, gone);
                before = now;
            }
        }
    }
}

fn scale_text(clusters: usize, weight_of: impl Fn(usize) -> u32) -> String {
    FileSpec {
        second_listener: true,
        clusters: (0..clusters)
            .map(|name| ClusterSpec {
                name,
                weight: weight_of(name),
                host: name,
                table_backends: name % 2 == 0,
                health_check: (name % 3 == 0).then_some(name % 2 == 0),
                listener: name % 2,
                named: false,
            })
            .collect(),
    }
    .pipe(|file| file_text(&file))
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

#[test]
fn only_the_changed_clusters_are_parsed_again() {
    let mut cache = ParseCache::new();
    let first = scale_text(12, |_| 100);
    let (_, usage) = cached(&mut cache, &first).expect("valid");
    assert_eq!(
        usage,
        CacheUse {
            reused: 0,
            parsed: 12
        }
    );
    let (_, usage) = cached(&mut cache, &first).expect("valid");
    assert_eq!(
        usage,
        CacheUse {
            reused: 12,
            parsed: 0
        }
    );
    let second = scale_text(12, |name| if name == 4 || name == 9 { 7 } else { 100 });
    let before = cache.generation();
    let (config, usage) = cached(&mut cache, &second).expect("valid");
    assert_eq!(
        usage,
        CacheUse {
            reused: 10,
            parsed: 2
        }
    );
    assert_eq!(Ok(config), whole(&second));
    // The caller learns which clusters did not change since which read.
    let last = cache.last_read();
    assert_eq!(last.generation, before + 1);
    assert_eq!(last.compared_with, Some(before));
    assert_eq!(last.unchanged, 10);
    let mut unchanged: Vec<&str> = cache.unchanged().collect();
    unchanged.sort_unstable();
    assert_eq!(
        unchanged,
        ["c0", "c1", "c10", "c11", "c2", "c3", "c5", "c6", "c7", "c8"]
    );
    // A refused read changes none of it; a read of other listeners compares with nothing.
    let refused = scale_text(12, |_| 5000);
    assert!(cached(&mut cache, &refused).is_err());
    assert_eq!(cache.last_read().generation, before + 1);
    let other = second.replace("127.0.0.1:8090", "127.0.0.1:8091");
    cached(&mut cache, &other).expect("valid");
    assert_eq!(cache.last_read().compared_with, None);
    assert_eq!(cache.last_read().unchanged, 0);
    assert_eq!(cache.unchanged().count(), 0);
}

#[test]
fn a_change_outside_the_clusters_parses_every_cluster_again() {
    let mut cache = ParseCache::new();
    let text = scale_text(6, |_| 100);
    cached(&mut cache, &text).expect("valid");
    let other = text.replace("log_level = \"warn\"", "log_level = \"info\"");
    let (config, usage) = cached(&mut cache, &other).expect("valid");
    assert_eq!(
        usage,
        CacheUse {
            reused: 0,
            parsed: 6
        }
    );
    assert_eq!(Ok(config), whole(&other));
    // Another file of the same folder reuses them; another folder does not.
    let renamed = cache
        .parse_counted(&other, "other.toml", Path::new("/etc/sluice"))
        .expect("valid");
    assert_eq!(
        renamed.1,
        CacheUse {
            reused: 6,
            parsed: 0
        }
    );
    let expected = root::parse(&other, "other.toml", Path::new("/etc/sluice")).expect("valid");
    assert_eq!(renamed.0, expected);
    let moved = cache
        .parse_counted(&other, "other.toml", Path::new("/etc/other"))
        .expect("valid");
    assert_eq!(
        moved.1,
        CacheUse {
            reused: 0,
            parsed: 6
        }
    );
}

#[test]
fn a_refused_file_reads_as_a_whole_parse_refuses_it_and_keeps_the_cache() {
    let mut cache = ParseCache::new();
    let text = scale_text(6, |_| 100);
    cached(&mut cache, &text).expect("valid");
    // An error in a changed cluster, past clusters that are reused.
    let bad = scale_text(6, |name| if name == 5 { 5000 } else { 100 });
    assert_eq!(cached(&mut cache, &bad).map(|(c, _)| c), whole(&bad));
    assert!(whole(&bad)
        .unwrap_err()
        .contains("weight: 5000 is out of range"));
    // A route taken by a reused cluster, taken again by a changed one.
    let shared = text.replace("hostname = \"h5.test\"", "hostname = \"h1.test\"");
    let refused = whole(&shared).unwrap_err();
    assert!(refused.contains("duplicate route"), "{refused}");
    assert_eq!(cached(&mut cache, &shared).map(|(c, _)| c), Err(refused));
    // A cluster defined twice, once in a reused text.
    let twice = format!("{text}\n[clusters.c1]\nbackends = []\n");
    assert_eq!(cached(&mut cache, &twice).map(|(c, _)| c), whole(&twice));
    // The last good read is still the base.
    let (_, usage) = cached(&mut cache, &text).expect("valid");
    assert_eq!(
        usage,
        CacheUse {
            reused: 6,
            parsed: 0
        }
    );
}

#[test]
fn a_cluster_with_answer_files_is_read_again_each_time() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let answer = dir.path().join("503.http");
    let head = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
    std::fs::write(&answer, head).expect("written");
    let text = format!(
        "[[listeners]]\naddress = \"127.0.0.1:8080\"\n[clusters.a]\nanswers = {{ 503 = \"{}\" }}\n\
         [clusters.b]\nbackends = []\n",
        answer.display()
    );
    let mut cache = ParseCache::new();
    let parse = |cache: &mut ParseCache| cache.parse_counted(&text, "a.toml", dir.path());
    parse(&mut cache).expect("valid");
    let changed = head.replace("Content-Length: 0", "Content-Length: 0\r\nX-Changed: 1");
    std::fs::write(&answer, &changed).expect("written");
    let (config, usage) = parse(&mut cache).expect("valid");
    assert_eq!(
        usage,
        CacheUse {
            reused: 1,
            parsed: 1
        }
    );
    let read = &config.clusters[0].cluster.answers;
    assert!(
        read.iter().any(|a| a.content.contains("X-Changed")),
        "{read:?}"
    );
}

#[test]
fn a_file_parsed_in_two_halves_reads_as_a_whole_parse() {
    let text = scale_text(12, |_| 100);
    let mut cache = ParseCache::splitting_from(2);
    let (config, usage) = cached(&mut cache, &text).expect("valid");
    assert_eq!(
        usage,
        CacheUse {
            reused: 0,
            parsed: 12
        }
    );
    assert_eq!(Ok(config), whole(&text));
    // A refusal in either half, or across them, reads as the whole parse's.
    for bad in [
        scale_text(12, |name| if name == 2 { 5000 } else { 100 }),
        scale_text(12, |name| if name == 10 { 5000 } else { 100 }),
        text.replace("hostname = \"h9.test\"", "hostname = \"h1.test\""),
    ] {
        let mut cache = ParseCache::splitting_from(2);
        let refused = whole(&bad);
        assert!(refused.is_err());
        assert_eq!(cached(&mut cache, &bad).map(|(c, _)| c), refused);
    }
}

#[test]
fn a_read_of_the_changes_leaves_out_what_it_reused_and_completes_to_a_whole_parse() {
    let folder = std::env::temp_dir().join(format!("sluice-cache-{}", std::process::id()));
    std::fs::create_dir_all(&folder).expect("temporary folder");
    let path = folder.join("scale.toml");
    let mut cache = ParseCache::new();
    std::fs::write(&path, scale_text(12, |_| 100)).expect("written");
    let first = cache.load_changes(&path).expect("valid");
    assert_eq!(first.clusters.len(), 12);
    let second_text = scale_text(12, |name| if name == 4 || name == 9 { 7 } else { 100 });
    std::fs::write(&path, &second_text).expect("written");
    let mut second = cache.load_changes(&path).expect("valid");
    let ids: Vec<&str> = second
        .clusters
        .iter()
        .map(|cluster| cluster.cluster.cluster_id.as_str())
        .collect();
    assert_eq!(ids, ["c4", "c9"]);
    assert_eq!(cache.last_read().unchanged, 10);
    assert!(cache.complete(cache.last_read().generation, &mut second));
    let mut expected = Config::load(&path).expect("valid");
    expected.path = second.path.clone();
    assert_eq!(second, expected);
    // A configuration of an earlier read is not completed with a later one's clusters.
    std::fs::write(
        &path,
        scale_text(12, |name| if name == 4 { 7 } else { 100 }),
    )
    .expect("written");
    let mut third = cache.load_changes(&path).expect("valid");
    let third_read = cache.last_read().generation;
    std::fs::write(
        &path,
        scale_text(12, |name| if name == 5 { 7 } else { 100 }),
    )
    .expect("written");
    cache.load_changes(&path).expect("valid");
    assert!(!cache.complete(third_read, &mut third));
    std::fs::remove_dir_all(&folder).ok();
}
