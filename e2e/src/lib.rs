//! `sluice-e2e` holds end-to-end tests that start the real `sluice` binary
//! and talk to it over real sockets on 127.0.0.1.
