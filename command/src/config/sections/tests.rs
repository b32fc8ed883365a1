use super::*;

fn names_and_texts(text: &str) -> Vec<(String, Vec<&str>)> {
    layout(text)
        .expect("a layout")
        .clusters
        .iter()
        .map(|c| {
            let texts = c.ranges.iter().map(|r| &text[r.clone()]).collect();
            (c.name(text).to_owned(), texts)
        })
        .collect()
}

#[test]
fn each_cluster_takes_its_sections_and_the_rest_is_context() {
    let text = "log_level = \"warn\"\n\n[[listeners]]\naddress = \"a\"\n\
                [clusters.a]\nx = 1\n[clusters.b]\ny = [\n  [1],\n]\n\
                [clusters.a.health_check]\nuri = \"/\"\n[etcd]\nz = 2\n";
    let layout = layout(text).expect("a layout");
    let rest: String = layout.rest.iter().map(|r| &text[r.clone()]).collect();
    assert_eq!(
        rest,
        "log_level = \"warn\"\n\n[[listeners]]\naddress = \"a\"\n[etcd]\nz = 2\n"
    );
    assert_eq!(
        names_and_texts(text),
        vec![
            (
                "a".to_owned(),
                vec![
                    "[clusters.a]\nx = 1\n",
                    "[clusters.a.health_check]\nuri = \"/\"\n"
                ]
            ),
            ("b".to_owned(), vec!["[clusters.b]\ny = [\n  [1],\n]\n"]),
        ]
    );
    let covered: usize = layout
        .rest
        .iter()
        .chain(layout.clusters.iter().flat_map(|c| c.ranges.iter()))
        .map(|r| r.len())
        .sum();
    assert_eq!(covered, text.len(), "every byte belongs to one section");
}

#[test]
fn brackets_inside_strings_comments_and_arrays_are_no_headers() {
    let text = "[clusters.a]\n\
                s = \"\"\"\n[clusters.b]\n\"\"\"\n\
                t = '''\n[clusters.c]\n'''''\n\
                u = \"[clusters.d]\" # [clusters.e]\n\
                v = [\n[clusters.f],\n]\n\
                w = { x = \"]\" }\n\
                # [clusters.g]\n\
                [etcd]\n\
                [[clusters.a.backends]] # a comment\r\n\
                address = 'x'\n";
    assert_eq!(
        names_and_texts(text),
        vec![(
            "a".to_owned(),
            vec![
                &text[..text.find("[etcd]").unwrap()],
                "[[clusters.a.backends]] # a comment\r\naddress = 'x'\n"
            ]
        )]
    );
}

#[test]
fn sections_that_follow_each_other_are_one_range() {
    let text = "[clusters.a]\nx = 1\n[[clusters.a.backends]]\ny = 2\n\
                [clusters.b]\n[clusters.a.health_check]\nz = 3\n";
    assert_eq!(
        names_and_texts(text),
        vec![
            (
                "a".to_owned(),
                vec![
                    "[clusters.a]\nx = 1\n[[clusters.a.backends]]\ny = 2\n",
                    "[clusters.a.health_check]\nz = 3\n"
                ]
            ),
            ("b".to_owned(), vec!["[clusters.b]\n"]),
        ]
    );
}

#[test]
fn layouts_that_cannot_be_told_are_none() {
    for text in [
        // Names TOML would read otherwise than a bare key.
        "[clusters.\"a\"]\n",
        "[clusters . a]\nx = 1\n[\"clusters\".b]\n",
        "[ 'clusters'.a ]\n",
        // Clusters defined without a header of their own.
        "[clusters]\na = {}\n",
        "clusters.a.backends = []\n",
        "\"clusters\" = {}\n",
        "'clusters'.a = {}\n",
        // Things left open, or not TOML.
        "[clusters.a]\nx = \"open\n[clusters.b]\n",
        "[clusters.a]\nx = \"\"\"open\n[clusters.b]\n",
        "[clusters.a]\nx = [1,\n[clusters.b]\n",
        "[clusters.a]\nx = 1]\n",
        "[clusters.a] x = 1\n",
        "[clusters.a\n",
        "[[clusters.a]\n",
        "# a \u{7} bell\n",
    ] {
        assert_eq!(layout(text), None, "{text:?}");
    }
}

#[test]
fn an_escaped_quote_does_not_end_a_string() {
    let text = "[clusters.a]\nx = \"a\\\"[clusters.b]\"\ny = \"\"\"\\\"\"\"[clusters.c]\n\"\"\"\n";
    assert_eq!(names_and_texts(text), vec![("a".to_owned(), vec![text])]);
}
