//! JSON forms of the protocol's enumerations: their names in snake_case
//! (`"round_robin"`, `"backend_down"`) rather than the numbers protobuf carries, so
//! that saved states and `ctl --json` answers read well. Numbers are still accepted
//! when reading, as older files may hold them.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Serializer;

/// Writes `value` as the snake_case name `name_of` gives, or as a number if unknown.
fn serialize<S: Serializer>(
    value: i32,
    name_of: fn(i32) -> Option<&'static str>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match name_of(value) {
        Some(name) => serializer.serialize_str(&name.to_ascii_lowercase()),
        None => serializer.serialize_i32(value),
    }
}

/// Reads a snake_case name (or a number) into the enumeration's value.
fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
    value_of: fn(&str) -> Option<i32>,
    expected: &'static str,
) -> Result<i32, D::Error> {
    struct EnumVisitor {
        value_of: fn(&str) -> Option<i32>,
        expected: &'static str,
    }
    impl Visitor<'_> for EnumVisitor {
        type Value = i32;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(formatter, "one of {}", self.expected)
        }

        fn visit_str<E: de::Error>(self, name: &str) -> Result<i32, E> {
            (self.value_of)(&name.to_ascii_uppercase())
                .ok_or_else(|| E::invalid_value(de::Unexpected::Str(name), &self))
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<i32, E> {
            i32::try_from(value).map_err(|_| E::invalid_value(de::Unexpected::Signed(value), &self))
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<i32, E> {
            i32::try_from(value)
                .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(value), &self))
        }
    }
    deserializer.deserialize_any(EnumVisitor { value_of, expected })
}

macro_rules! enum_serde {
    ($module:ident, $enum:ident, $expected:literal) => {
        #[doc = concat!("Serde functions for fields holding a [`crate::proto::", stringify!($enum), "`].")]
        pub mod $module {
            use crate::proto::$enum;

            /// Writes the value's name.
            pub fn serialize<S: serde::Serializer>(value: &i32, serializer: S) -> Result<S::Ok, S::Error> {
                super::serialize(
                    *value,
                    |v| $enum::try_from(v).ok().map(|e| e.as_str_name()),
                    serializer,
                )
            }

            /// Reads a name or a number.
            pub fn deserialize<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
                super::deserialize(
                    deserializer,
                    |name| $enum::from_str_name(name).map(|e| e as i32),
                    $expected,
                )
            }
        }
    };
}

enum_serde!(listener_protocol, ListenerProtocol, "http, tcp, https");
enum_serde!(
    load_balancing_algorithm,
    LoadBalancingAlgorithm,
    "round_robin, random, least_loaded, power_of_two"
);
enum_serde!(
    load_metric,
    LoadMetric,
    "connections, requests, connect_time"
);
enum_serde!(path_rule_kind, PathRuleKind, "prefix, exact, regex");
enum_serde!(response_status, ResponseStatus, "ok, processing, failure");
enum_serde!(
    worker_run_state,
    WorkerRunState,
    "running, stopping, stopped, not_answering"
);
enum_serde!(event_kind, EventKind, "an event kind such as backend_down");

#[cfg(test)]
mod tests {
    use crate::proto::{Cluster, LoadBalancingAlgorithm};

    fn cluster() -> Cluster {
        Cluster {
            cluster_id: "api".to_owned(),
            protocol: 0,
            load_balancing: LoadBalancingAlgorithm::LeastLoaded as i32,
            load_metric: 2,
            sticky_session: false,
            sticky_cookie_name: None,
            health_check: None,
            answers: Vec::new(),
            max_connect_retries: None,
            prefer_last_backend: None,
        }
    }

    #[test]
    fn enumerations_are_written_as_names_and_read_back() {
        let json = serde_json::to_string(&cluster()).unwrap();
        assert!(json.contains(r#""protocol":"http""#), "{json}");
        assert!(
            json.contains(r#""load_balancing":"least_loaded""#),
            "{json}"
        );
        assert!(json.contains(r#""load_metric":"connect_time""#), "{json}");
        let back: Cluster = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cluster());
    }

    #[test]
    fn numbers_are_still_read_and_unknown_names_refused() {
        let json = serde_json::to_string(&cluster())
            .unwrap()
            .replace(r#""least_loaded""#, "2");
        let back: Cluster = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cluster());
        let bad = json.replace(r#""load_balancing":2"#, r#""load_balancing":"roundrobin""#);
        let error = serde_json::from_str::<Cluster>(&bad).unwrap_err();
        assert!(error.to_string().contains("round_robin"), "{error}");
    }
}
