//! `sluice-command` is the control-plane contract of Sluice: every message that
//! `sluice ctl`, the main process and the workers exchange (generated from
//! `proto/command.proto`), the framed [`channel`] that carries them, the TOML
//! [`config`] and the [`state`] that the main process keeps and workers mirror.
//!
//! It does no network I/O beyond the channel and knows nothing of the CLI.

#![forbid(unsafe_code)]

pub mod certificate;
pub mod channel;
pub mod config;
pub mod listener_sockets;
pub mod metrics;
pub mod proto;
pub mod serde_enums;
pub mod state;
