//! Tracking compiled out costs nothing: a release build of a service that
//! depends on leakcheck with `default-features = false` contains none of the
//! registry's code, while the same build with tracking on does (which shows
//! this test can tell the two apart).

use std::path::{Path, PathBuf};
use std::process::Command;

const MANIFEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/zero_cost/Cargo.toml");

/// Builds the zero-cost binary in release, with or without tracking, and
/// returns its path.
fn build(tracked: bool) -> PathBuf {
    let target_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/zero_cost");
    let profile_dir = if tracked { "tracked" } else { "plain" };
    let target_dir = target_dir.join(profile_dir);
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args(["build", "--release", "--quiet", "--manifest-path", MANIFEST])
        .arg("--target-dir")
        .arg(&target_dir);
    if tracked {
        cargo.args(["--features", "tracked"]);
    }
    let status = cargo.status().expect("running cargo");
    assert!(status.success(), "building the zero-cost binary failed");
    let binary = target_dir.join("release/leakcheck-zero-cost");
    let output = Command::new(&binary).output().expect("running it");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "15");
    binary
}

/// The registry's modules as they appear in (legacy-mangled) symbol names:
/// as a path (`9leakcheck5scope`) and as a generic argument, for example in
/// drop glue (`leakcheck..scope`).
const REGISTRY_SYMBOLS: [&str; 8] = [
    "9leakcheck5scope",
    "9leakcheck6record",
    "9leakcheck8registry",
    "9leakcheck7context",
    "leakcheck..scope",
    "leakcheck..record",
    "leakcheck..registry",
    "leakcheck..context",
];

fn registry_symbols_in(binary: &Path) -> Vec<&'static str> {
    let bytes = std::fs::read(binary).expect("reading the binary");
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    REGISTRY_SYMBOLS
        .into_iter()
        .filter(|s| contains(s))
        .collect()
}

#[test]
fn a_release_build_without_tracking_has_no_registry_code() {
    let plain = build(false);
    assert_eq!(registry_symbols_in(&plain), Vec::<&str>::new());
    let tracked = build(true);
    assert!(
        !registry_symbols_in(&tracked).is_empty(),
        "the tracked build should contain the registry, or this test proves nothing"
    );
}
