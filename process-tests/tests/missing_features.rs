//! A `#[leak_check]` argument whose tokio feature is missing is a compile
//! error that names the feature, as `#[tokio::test]` alone would (or
//! better): built on the crate under `process-tests/missing_features`, whose tokio
//! has neither `rt-multi-thread` nor `test-util`, without `tokio_unstable`.

use std::path::Path;
use std::process::Command;

#[test]
fn a_missing_tokio_feature_is_named() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(env!("CARGO"))
        .args(["build", "--tests", "--quiet", "--manifest-path"])
        .arg(root.join("missing_features/Cargo.toml"))
        .arg("--target-dir")
        .arg(root.join("../target/missing-features"))
        .env("CARGO_TERM_COLOR", "never")
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "it must not build:\n{stderr}");
    for (argument, message) in [
        (
            "flavor = \"multi_thread\"",
            "The runtime flavor `multi_thread` requires the `rt-multi-thread` feature.",
        ),
        (
            "start_paused = true",
            "the item is gated behind the `test-util` feature",
        ),
        ("unhandled_panic = \"ignore\"", "#[cfg(tokio_unstable)]"),
    ] {
        assert!(
            stderr.contains(message),
            "no {message:?} for `{argument}`:\n{stderr}"
        );
    }
    // Both point at the user's argument, not into leakcheck.
    assert!(stderr.contains("tests/cases.rs:4:15"), "{stderr}");
    assert!(stderr.contains("tests/cases.rs:8:15"), "{stderr}");
    assert!(stderr.contains("tests/cases.rs:12:15"), "{stderr}");
}
