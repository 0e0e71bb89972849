//! A build without the `track` feature (`cargo test --no-default-features
//! --test tracking_off`, run by `.ci/run`): the spawners still work, as plain
//! tokio/std calls, and every check fails saying tracking is off instead of
//! passing without having looked. With the feature on this file is empty.
#![cfg(not(feature = "track"))]

use std::time::Duration;

#[tokio::test]
async fn spawners_are_plain_calls_and_checks_say_tracking_is_off() {
    assert_eq!(leakcheck::spawn(async { 1 }).await.unwrap(), 1);
    assert_eq!(leakcheck::spawn_blocking(|| 2).await.unwrap(), 2);
    assert_eq!(
        tokio::spawn(leakcheck::track(async { 3 })).await.unwrap(),
        3
    );
    let named = leakcheck::Builder::new().name("worker").spawn(async { 4 });
    assert_eq!(named.await.unwrap(), 4);
    // A leak that a tracking build would catch...
    let _leak = leakcheck::spawn(std::future::pending::<()>());
    // ...is not silently passed: the check says it couldn't look.
    let report = leakcheck::Options::new()
        .settle(Duration::from_millis(10))
        .find_async()
        .await
        .unwrap_err();
    assert!(report.leaks().is_empty());
    assert!(report.to_string().contains("tracking is off"), "{report}");
}

#[test]
fn threads_are_plain_and_the_blocking_check_panics() {
    let thread = leakcheck::thread::Builder::new()
        .name("plain".into())
        .spawn(|| std::thread::current().name().map(str::to_owned))
        .unwrap();
    assert_eq!(thread.join().unwrap().as_deref(), Some("plain"));
    let panic = std::panic::catch_unwind(leakcheck::verify_none).unwrap_err();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("tracking is off"), "{message}");
}

#[tokio::test]
async fn a_profile_is_empty_and_says_why() {
    let _task = leakcheck::spawn(std::future::pending::<()>());
    let profile = leakcheck::profile();
    assert_eq!(profile.total(), 0);
    assert!(profile.groups().is_empty());
    assert!(profile.to_string().contains("tracking is off"), "{profile}");
}
