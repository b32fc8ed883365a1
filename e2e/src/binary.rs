//! Finding the built `sluice` binary.
//!
//! `env!("CARGO_BIN_EXE_sluice")` only exists in the `sluice` package's own
//! tests, so this crate looks next to its own executable: tests run from
//! `target/<profile>/deps/`, binaries of this crate (the bench) from
//! `target/<profile>/`, and `sluice` sits in `target/<profile>/`.

use std::env;
use std::path::{Path, PathBuf};

/// Environment variable that, when set, overrides where `sluice` is.
pub const SLUICE_BIN_ENV: &str = "SLUICE_BIN";

/// Path of the built `sluice` binary of the same profile as the running
/// executable (or `$SLUICE_BIN`).
///
/// Panics, saying how to build it, when it cannot be found: without it no
/// e2e test can run.
pub fn sluice_binary() -> PathBuf {
    find_sluice_binary().unwrap_or_else(|| {
        panic!(
            "the sluice binary was not found next to the running executable \
             (looked in {:?}); build it first with `cargo build -p sluice` (add \
             --release for release tests) or set {SLUICE_BIN_ENV}",
            env::current_exe()
                .map(|exe| candidates(&exe))
                .unwrap_or_default()
        )
    })
}

/// Like [`sluice_binary`], but `None` instead of a panic.
pub fn find_sluice_binary() -> Option<PathBuf> {
    if let Some(path) = env::var_os(SLUICE_BIN_ENV) {
        return Some(PathBuf::from(path));
    }
    let exe = env::current_exe().ok()?;
    candidates(&exe).into_iter().find(|path| path.is_file())
}

/// The release build of `sluice` when it exists and is not older than the
/// binary [`sluice_binary`] finds (so a stale release build is never tested
/// in place of the current code); else [`sluice_binary`]. For tests whose
/// load would take too long through a debug build.
pub fn fastest_sluice_binary() -> PathBuf {
    let default = sluice_binary();
    let release = default
        .parent()
        .and_then(Path::parent)
        .map(|target| target.join("release").join("sluice"));
    let modified = |path: &Path| path.metadata().and_then(|m| m.modified()).ok();
    match release {
        Some(release)
            if release != default
                && matches!(
                    (modified(&release), modified(&default)),
                    (Some(r), Some(d)) if r >= d
                ) =>
        {
            release
        }
        _ => default,
    }
}

fn candidates(exe: &Path) -> Vec<PathBuf> {
    let Some(dir) = exe.parent() else {
        return Vec::new();
    };
    let mut found = vec![dir.join("sluice")];
    if dir.file_name().is_some_and(|name| name == "deps") {
        if let Some(profile_dir) = dir.parent() {
            found.insert(0, profile_dir.join("sluice"));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::candidates;
    use std::path::{Path, PathBuf};

    #[test]
    fn a_test_executable_looks_in_the_profile_folder_first() {
        let exe = Path::new("/t/target/release/deps/mocks-0123");
        assert_eq!(
            candidates(exe),
            vec![
                PathBuf::from("/t/target/release/sluice"),
                PathBuf::from("/t/target/release/deps/sluice")
            ]
        );
    }

    #[test]
    fn a_binary_looks_beside_itself() {
        let exe = Path::new("/t/target/release/bench");
        assert_eq!(
            candidates(exe),
            vec![PathBuf::from("/t/target/release/sluice")]
        );
    }
}
