//! Types generated from `proto/command.proto`.
#![allow(missing_docs, unreachable_pub, clippy::all)]

include!(concat!(env!("OUT_DIR"), "/sluice.command.rs"));
