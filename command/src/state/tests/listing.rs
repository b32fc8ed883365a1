//! Listings and filters of clusters, frontends and listeners.

use super::*;

#[test]
fn cluster_list_filters_by_id_and_hostname() {
    let mut state = base();
    state
        .apply(&http_frontend(WEB, "*.example.org", Some("web")))
        .expect("wildcard");
    let query = |filter| {
        state.cluster_list(&proto::QueryClusters {
            filter,
            ..Default::default()
        })
    };
    let ids = |list: proto::ClusterList| -> Vec<String> {
        list.clusters
            .into_iter()
            .map(|info| info.cluster.cluster_id)
            .collect()
    };
    assert_eq!(ids(query(None)), ["db", "web"]);
    assert_eq!(ids(query(Some(Filter::All(true)))), ["db", "web"]);
    assert_eq!(ids(query(Some(Filter::ClusterId("db".into())))), ["db"]);
    assert!(ids(query(Some(Filter::ClusterId("nope".into())))).is_empty());
    assert_eq!(
        ids(query(Some(Filter::Hostname("Example.com".into())))),
        ["web"]
    );
    assert_eq!(
        ids(query(Some(Filter::Hostname("a.example.org".into())))),
        ["web"]
    );
    assert!(ids(query(Some(Filter::Hostname("a.b.example.org".into())))).is_empty());
    let web = query(Some(Filter::ClusterId("web".into())));
    assert_eq!(web.clusters[0].backends.len(), 1);
    assert_eq!(web.clusters[0].http_frontends.len(), 2);
}

#[test]
fn frontend_and_listener_lists() {
    let state = base();
    let frontends = state.frontend_list();
    assert_eq!(frontends.http_frontends.len(), 1);
    assert_eq!(frontends.tcp_frontends.len(), 1);
    let listeners = state.listener_list().listeners;
    assert_eq!(listeners.len(), 2);
    assert!(listeners[0].tcp.is_some() && !listeners[0].active);
    assert!(listeners[1].http.is_some() && listeners[1].active);
}

#[test]
fn cluster_listings_filter_on_ids_and_hostnames_and_page() {
    let mut state = base();
    for id in ["shop-a", "shop-b", "blog"] {
        state
            .apply(&cluster(id, ListenerProtocol::Http))
            .expect("cluster");
    }
    state
        .apply(&http_frontend(WEB, "www.Boutique.test", Some("blog")))
        .expect("frontend");
    let list = |pattern: Option<&str>, limit, offset| {
        let list = state.cluster_list(&proto::QueryClusters {
            filter: Some(proto::query_clusters::Filter::All(true)),
            pattern: pattern.map(str::to_owned),
            limit,
            offset,
        });
        let ids: Vec<String> = list
            .clusters
            .iter()
            .map(|info| info.cluster.cluster_id.clone())
            .collect();
        (ids, list.matched)
    };
    assert_eq!(
        list(Some("shop"), None, None),
        (vec!["shop-a".into(), "shop-b".into()], Some(2))
    );
    assert_eq!(
        list(Some("*.boutique.*"), None, None),
        (vec!["blog".into()], Some(1))
    );
    assert_eq!(
        list(Some("example.com"), None, None),
        (vec!["web".into()], Some(1))
    );
    assert_eq!(
        list(None, Some(2), Some(1)),
        (vec!["db".into(), "shop-a".into()], Some(5))
    );
    assert_eq!(list(Some("nothing"), None, None), (vec![], Some(0)));
}
