//! The text of a profile, pinned: alone in its test binary, so the process
//! holds only the tasks this test spawns.

mod common;

use std::time::Duration;

#[tokio::test]
async fn a_profile_reads_like_a_goroutine_profile() {
    let (tx, rx) = tokio::sync::watch::channel(());
    let mut tasks = Vec::new();
    let acceptor = leakcheck::Builder::new()
        .name("acceptor")
        .spawn(async move {
            let mut handlers = Vec::new();
            for _ in 0..4 {
                // A handler that forgot its timeout's work: the work can never
                // finish, and 4 of them pile up.
                handlers.push(leakcheck::spawn(async {
                    leakcheck::spawn(std::future::pending::<()>());
                    std::future::pending::<()>().await
                }));
            }
            std::future::pending::<()>().await
        });
    for _ in 0..2 {
        let mut rx = rx.clone();
        tasks.push(leakcheck::spawn(async move {
            while rx.changed().await.is_ok() {}
        }));
    }
    for _ in 0..5 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
    let text = leakcheck::profile().to_string();
    let taken = text.find("taken ").expect("a header") + "taken ".len();
    let utc = text[taken..].find(" UTC").expect("a time") + taken;
    let text = format!("{}[time]{}", &text[..taken], &text[utc..]);
    common::assert_snapshot("profile", &common::redact(&text), true);
    acceptor.abort();
    drop(tx);
}
